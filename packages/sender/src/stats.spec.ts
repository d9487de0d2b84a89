import { SenderStats, type ViewerFigures } from './stats';

/** A viewer's figures as a test sets them. */
function viewer(id: number, name: string, figures: Partial<ViewerFigures> = {}): ViewerFigures {
  return {
    id,
    name,
    sent: 0,
    dropped: 0,
    bytesSent: 0,
    rung: 0,
    inFlightBytes: 0,
    inFlightFrames: 0,
    windowBytes: 128 * 1024,
    capacityBytesPerSecond: undefined,
    describeRung: (rung = 0) => (rung === 0 ? 'rung 0 (1280x720 q80)' : 'rung 3 (960x540 q60)'),
    ...figures,
  };
}

describe('SenderStats', () => {
  function setup(format: 'text' | 'json') {
    const lines: string[] = [];
    const server = { viewerList: [] as ViewerFigures[] };
    const stats = new SenderStats(server, format, true, (line) => void lines.push(line));
    return { lines, server, stats };
  }

  it('says once that it waits for receivers, then nothing until someone joins', () => {
    const { lines, server, stats } = setup('text');
    for (let i = 0; i < 5; i++) stats.report();
    expect(lines).toEqual(['waiting for receivers\n']);
    server.viewerList.push(viewer(1, 'first', { dropped: 2 }));
    stats.published(1.5);
    stats.report();
    expect(lines[1]).toMatch(/^sending \d+\.\d fps, encode 1\.50 ms, 1 viewer\(s\), [\d.]+ Mbit\/s in all, 2 frames dropped\n$/);
    server.viewerList.length = 0;
    stats.report();
    stats.report();
    expect(lines.slice(3)).toEqual(['waiting for receivers\n']);
  });

  it('gives a line per viewer: its rung, frames, bitrate and drops in that second, what is in flight of its window, its link', () => {
    const { lines, server, stats } = setup('text');
    const alice = viewer(3, 'alice@host', { sent: 100, dropped: 4, bytesSent: 1_000_000, rung: 3, inFlightBytes: 45 * 1024, windowBytes: 512 * 1024, capacityBytesPerSecond: 637_500 });
    server.viewerList.push(alice);
    stats.report();
    // The next second: 30 more frames, 2 more drops.
    Object.assign(alice, { sent: 130, dropped: 6, bytesSent: 1_500_000 });
    stats.report();
    const [summary, line] = lines.slice(-2);
    expect(summary).toMatch(/, 1 viewer\(s\), [\d.]+ Mbit\/s in all, 6 frames dropped\n$/);
    expect(line).toMatch(/^sending to #3 \(alice@host\) on rung 3 \(960x540 q60\): 30 frames, [\d.]+ Mbit\/s, 2 dropped, in flight 45 KB of 512 KB, link 5\.1 Mbit\/s\n$/);
  });

  it('in JSON, prints one line with no viewers, then nothing until someone joins; per viewer its figures', () => {
    const { lines, server, stats } = setup('json');
    stats.report();
    stats.report();
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ kind: 'interval', fps: 0, viewers: 0, dropped: {}, perViewer: [] });
    server.viewerList.push(viewer(1, 'first', { sent: 10, dropped: 1, rung: 2, inFlightBytes: 900, inFlightFrames: 1, windowBytes: 4000, capacityBytesPerSecond: 1_000_000 }));
    stats.report();
    expect(JSON.parse(lines[1]!)).toMatchObject({
      viewers: 1,
      dropped: { first: 1 },
      perViewer: [{ id: 1, name: 'first', rung: 2, sent: 10, dropped: 1, frames: 10, droppedNow: 1, inFlightBytes: 900, inFlightFrames: 1, windowBytes: 4000, linkMbps: 8 }],
    });
  });

  it('gives a tutorial client its own line and JSON: frames, bitrate, drops and what its socket holds, no rung or window', () => {
    for (const format of ['text', 'json'] as const) {
      const { lines, server, stats } = setup(format);
      const client = { wire: 'tutorial' as const, id: 2, name: '127.0.0.1:50000', sent: 10, dropped: 1, bytesSent: 9_216_000, queuedBytes: 300 * 1024 };
      server.viewerList.push(client);
      stats.report();
      Object.assign(client, { sent: 40, dropped: 4, bytesSent: 36_864_000 });
      stats.report();
      if (format === 'text') {
        expect(lines.at(-1)).toMatch(/^sending to #2 \(127\.0\.0\.1:50000\) on the tutorial wire: 30 frames, [\d.]+ Mbit\/s, 3 dropped, queued 300 KB in its socket\n$/);
      } else {
        expect(JSON.parse(lines.at(-1)!).perViewer).toEqual([
          { id: 2, name: '127.0.0.1:50000', wire: 'tutorial', sent: 40, dropped: 4, queuedBytes: 300 * 1024, frames: 30, mbps: expect.any(Number), droppedNow: 3 },
        ]);
      }
    }
  });

  it('in JSON, sums up the run at the end', () => {
    const { lines, server, stats } = setup('json');
    server.viewerList.push(viewer(1, 'first', { sent: 3, dropped: 1 }));
    stats.published(2);
    stats.published(4);
    stats.summary();
    expect(JSON.parse(lines.at(-1)!)).toMatchObject({ kind: 'summary', frames: 2, encodeMs: 3, perViewer: [{ id: 1, sent: 3, dropped: 1, linkMbps: null }] });
  });

  it('in text, leaves the summary to the viewers\' own "left" lines', () => {
    const { lines, stats } = setup('text');
    stats.summary();
    expect(lines).toEqual([]);
  });

  it('reports the NATS side: frames published and dropped in the second and in all, and the connection', () => {
    const { lines, stats } = setup('text');
    const nats = { camera: 'porch', epoch: 'e', framesPublished: 30, framesDropped: 2, frameBytes: 300_000, announcements: 1, describeReplies: 0, unconfirmedBytes: 0, reconnects: 1, connected: true, server: '127.0.0.1:4222' };
    stats.showNats(() => nats);
    stats.published(2);
    stats.report();
    nats.framesPublished = 45;
    nats.framesDropped = 5;
    nats.connected = false;
    stats.published(2);
    stats.report();
    const natsLines = lines.filter((line) => line.startsWith('nats '));
    expect(natsLines[0]).toMatch(/^nats camera porch: 30 frames published, [\d.]+ Mbit\/s, 2 dropped \(2 in all, 30 published\), connected to 127\.0\.0\.1:4222, 1 reconnects\n$/);
    expect(natsLines[1]).toMatch(/^nats camera porch: 15 frames published, [\d.]+ Mbit\/s, 3 dropped \(5 in all, 45 published\), DISCONNECTED, 1 reconnects\n$/);
  });
});
