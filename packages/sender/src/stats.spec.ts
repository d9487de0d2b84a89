import { SenderStats } from './stats';
import type { Viewer } from './viewer';

describe('SenderStats', () => {
  function setup(format: 'text' | 'json') {
    const lines: string[] = [];
    const server = { viewerList: [] as Viewer[] };
    const stats = new SenderStats(server, format, true, (line) => void lines.push(line));
    const join = (name: string, dropped = 0) => server.viewerList.push({ name, dropped } as Viewer);
    return { lines, server, stats, join };
  }

  it('says once that it waits for receivers, then nothing until someone joins', () => {
    const { lines, server, stats, join } = setup('text');
    for (let i = 0; i < 5; i++) stats.report();
    expect(lines).toEqual(['waiting for receivers\n']);
    join('first', 2);
    stats.frameSent(1.5, 1000);
    stats.report();
    expect(lines[1]).toMatch(/^sending \d+\.\d fps, [\d.]+ Mbit\/s per viewer, encode 1\.50 ms, 1 viewer\(s\), 2 frames dropped\n$/);
    server.viewerList.length = 0;
    stats.report();
    stats.report();
    expect(lines.slice(2)).toEqual(['waiting for receivers\n']);
  });

  it('in JSON, prints one line with no viewers, then nothing until someone joins', () => {
    const { lines, stats, join } = setup('json');
    stats.report();
    stats.report();
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ fps: 0, viewers: 0, dropped: {} });
    join('first');
    stats.report();
    expect(JSON.parse(lines[1]!)).toMatchObject({ viewers: 1, dropped: { first: 0 } });
  });
});
