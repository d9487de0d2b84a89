import { formatStatsLine, ReceiverStats } from './stats';

describe('ReceiverStats', () => {
  it('counts received, decoded and shown frames apart: a frame decoded but not taken by every sink is not shown', () => {
    const stats = new ReceiverStats();
    for (let i = 0; i < 5; i++) stats.frameReceived(1000);
    for (let i = 0; i < 4; i++) stats.frameDecoded(2);
    for (let i = 0; i < 3; i++) stats.frameShown();
    stats.skipped = 1;
    const summary = stats.summary();
    expect(summary).toMatchObject({ frames: 5, shown: 3, skipped: 1 });
    // Rates over the same seconds: in the ratio of the counts.
    expect(summary.decodedFps / summary.fps).toBeCloseTo(4 / 5, 2);
    expect(summary.shownFps / summary.fps).toBeCloseTo(3 / 5, 2);

    // An interval counts only its own frames; the totals go on.
    stats.takeInterval();
    stats.frameReceived(1000);
    stats.frameDecoded(2);
    stats.frameShown();
    const interval = stats.takeInterval();
    expect(interval).toMatchObject({ frames: 6, shown: 4 });
    expect(interval.shownFps).toBe(interval.fps);
  });

  it('the line says what each figure counts', () => {
    const line = formatStatsLine({
      seconds: 1,
      fps: 30,
      decodedFps: 29,
      shownFps: 25,
      mbps: 8.41,
      latencyMs: { p50: 4.2, p95: 5.9, p99: 7.5 },
      frames: 300,
      shown: 280,
      senderDropped: 1,
      skipped: 19,
      gaps: 0,
      corrupt: 1,
    });
    expect(line).toBe(
      'received 30.0 fps, decoded 29.0 fps, shown 25.0 fps, 8.41 Mbit/s, latency p50 4.2 / p95 5.9 / p99 7.5 ms, ' +
        'dropped 1 by sender + 19 skipped, gaps 0, corrupt 1, total 300 received / 280 shown',
    );
  });
});
