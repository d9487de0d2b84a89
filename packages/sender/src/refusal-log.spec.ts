import { RefusalLog } from './refusal-log';

describe('RefusalLog', () => {
  function setup(options: { burst?: number; perSecond?: number } = {}) {
    const lines: string[] = [];
    let clock = 0;
    const log = new RefusalLog((line) => lines.push(line), { ...options, summaryMs: 60_000, now: () => clock });
    return { lines, log, advance: (ms: number) => (clock += ms) };
  }

  it('logs the first refusals one by one, then counts the rest by reason and sums them up in one line', () => {
    const { lines, log, advance } = setup({ burst: 3 });
    for (let i = 0; i < 1000; i++) log.refused(`refused client ${i}`, i % 4 === 0 ? 'ERR_HANDSHAKE_TIMEOUT' : 'ERR_FULL');
    expect(lines).toEqual(['refused client 0', 'refused client 1', 'refused client 2']);
    advance(2500);
    log.flush();
    expect(lines).toHaveLength(4);
    expect(lines[3]).toBe('997 more refused or closed connections in the last 2.5 s, too many to log one by one: 748 ERR_FULL, 249 ERR_HANDSHAKE_TIMEOUT');
  });

  it('gives the allowance back over time, and has nothing to sum up when everything was logged', () => {
    const { lines, log, advance } = setup({ burst: 2, perSecond: 1 });
    log.refused('a', 'X');
    log.refused('b', 'X');
    log.refused('c', 'X'); // counted
    advance(1000);
    log.refused('d', 'X'); // one line came back
    log.refused('e', 'X'); // counted
    log.flush();
    log.flush();
    expect(lines).toEqual(['a', 'b', 'd', '2 more refused or closed connections in the last 1.0 s, too many to log one by one: 2 X']);
    advance(10_000);
    log.refused('f', 'X');
    log.refused('g', 'X');
    log.flush();
    expect(lines.slice(4)).toEqual(['f', 'g']);
  });

  it('prints the summary by itself once the summary period is over', async () => {
    const lines: string[] = [];
    const log = new RefusalLog((line) => lines.push(line), { burst: 1, summaryMs: 20 });
    log.refused('first', 'ERR_FULL');
    log.refused('second', 'ERR_FULL');
    expect(lines).toEqual(['first']);
    await new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (lines.length < 2) return;
        clearInterval(check);
        resolve();
      }, 5);
    });
    expect(lines[1]).toMatch(/^1 more refused or closed connection in the last [\d.]+ s, too many to log one by one: 1 ERR_FULL$/);
  });
});
