import { formatRung, formatStatsLine, ReceiverStats, TUTORIAL_WIRE_NOT_KNOWN, type StatsSnapshot } from './stats';

const frame = (rung = 0, declaredDrops = 0, undeclaredGap = 0) => ({ payloadBytes: 1000, rung, declaredDrops, undeclaredGap });

describe('ReceiverStats', () => {
  it('counts received, decoded and shown frames apart: a frame decoded but not taken by every sink is not shown', () => {
    const stats = new ReceiverStats();
    for (let i = 0; i < 5; i++) stats.frameReceived(frame());
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
    stats.frameReceived(frame());
    stats.frameDecoded(2);
    stats.frameShown();
    const interval = stats.takeInterval();
    expect(interval).toMatchObject({ frames: 6, shown: 4 });
    expect(interval.shownFps).toBe(interval.fps);
  });

  it('reports once per connection attempt how long after it the first frame was decoded', () => {
    const stats = new ReceiverStats();
    const reports: number[] = [];
    stats.frameDecoded(2); // before any attempt: nothing to report
    stats.connecting((ms) => reports.push(ms));
    stats.frameReceived(frame());
    expect(reports).toEqual([]); // received is not yet a picture
    stats.frameDecoded(2);
    stats.frameDecoded(2);
    expect(reports).toHaveLength(1);
    expect(reports[0]).toBeGreaterThanOrEqual(0);
    stats.connecting((ms) => reports.push(-ms)); // a reconnection reports again
    stats.frameDecoded(2);
    expect(reports).toHaveLength(2);
    expect(reports[1]).toBeLessThanOrEqual(0);
  });

  it('sums the drops the sender declared and the gaps it did not, over every connection', () => {
    const stats = new ReceiverStats();
    stats.frameReceived(frame(0, 0, 0));
    stats.frameReceived(frame(0, 3, 0));
    stats.frameReceived(frame(0, 1, 2));
    stats.streamStarted([{ width: 4, height: 4 }]); // a reconnection: the sums go on
    stats.frameReceived(frame(0, 2, 0));
    expect(stats.summary()).toMatchObject({ senderDropped: 6, gaps: 2 });
    expect(stats.sequence).toEqual({ declaredDrops: 6, undeclaredGaps: 2 });
  });

  it('reports the rung of the latest frame, and counts the frames that came on lower rungs', () => {
    const stats = new ReceiverStats();
    expect(stats.summary()).toMatchObject({ rung: null, lowerRungFrames: 0 });
    stats.streamStarted([
      { width: 1280, height: 720, quality: 80 },
      { width: 1280, height: 720, quality: 60 },
      { width: 640, height: 360 },
    ]);
    stats.frameReceived(frame(0));
    expect(stats.summary().rung).toEqual({ index: 0, lowest: 2, width: 1280, height: 720, quality: 80 });
    stats.frameReceived(frame(2));
    stats.frameReceived(frame(1));
    expect(stats.summary()).toMatchObject({ rung: { index: 1, lowest: 2, width: 1280, height: 720, quality: 60 }, lowerRungFrames: 2 });
    // A new connection: no frame on it yet.
    stats.streamStarted([{ width: 320, height: 240 }]);
    expect(stats.summary()).toMatchObject({ rung: null, lowerRungFrames: 2 });
  });

  it('takes the counts of a transport that counts every message itself (NATS), and its frames for the rate', () => {
    const stats = new ReceiverStats();
    stats.frameReceived(frame(0, 5, 5)); // what was delivered: its own counts give way
    stats.corrupt = 1; // a frame that did not decode
    stats.syncTransport({ frames: 40, declaredDrops: 2, undeclaredGaps: 0, lostInTransport: 7, corrupt: 3, refused: 4, skipped: 6, outages: 1 });
    expect(stats.summary()).toMatchObject({ frames: 40, senderDropped: 2, gaps: 0, lostInTransport: 7, corrupt: 4, refused: 4, skipped: 6, outages: 1 });
    stats.takeInterval();
    stats.syncTransport({ frames: 70, declaredDrops: 2, undeclaredGaps: 0, lostInTransport: 7, corrupt: 3, refused: 4, skipped: 6, outages: 1 });
    // The rate counts the transport's frames of the interval: 30 here, none in the next one.
    expect(stats.takeInterval().fps).toBeGreaterThan(0);
    expect(stats.takeInterval().fps).toBe(0);
  });

  it('counts decode latency into the /metrics histogram, in seconds', () => {
    const stats = new ReceiverStats();
    stats.frameDecoded(4);
    stats.frameDecoded(40);
    const histogram = stats.latency.snapshot();
    expect(histogram.count).toBe(2);
    expect(histogram.sum).toBeCloseTo(0.044, 6);
    expect(histogram.buckets.find((b) => b.le === 0.005)!.count).toBe(1);
    expect(histogram.buckets.find((b) => b.le === 0.05)!.count).toBe(2);
  });

  it('the line says what each figure counts', () => {
    const snapshot: StatsSnapshot = {
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
      lostInTransport: 0,
      corrupt: 1,
      refused: 0,
      outages: 0,
      rung: { index: 3, lowest: 5, width: 960, height: 540, quality: 60 },
      lowerRungFrames: 120,
    };
    expect(formatStatsLine(snapshot)).toBe(
      'received 30.0 fps, decoded 29.0 fps, shown 25.0 fps, 8.41 Mbit/s, latency p50 4.2 / p95 5.9 / p99 7.5 ms, ' +
        'rung 3/5 960x540 q60 (120 on lower rungs), dropped 1 by sender + 19 skipped, gaps 0, corrupt 1, total 300 received / 280 shown',
    );
    // A transport that loses or refuses messages (NATS) says so, apart from gaps and corrupt frames.
    expect(formatStatsLine({ ...snapshot, lostInTransport: 12, outages: 1 })).toContain('gaps 0, corrupt 1, lost 12 in transport, refused 0, outages 1, total 300');
    expect(formatStatsLine(snapshot, true)).toContain('corrupt 1, lost 0 in transport, refused 0, outages 0, total');
    expect(formatRung(null)).toBe('rung -');
    expect(formatRung({ index: 0, lowest: 0, width: 640, height: 480 })).toBe('rung 0/0 640x480');
  });

  it('on a wire that cannot tell latency, drops or gaps, reports them as not known, with the reason, never as 0', () => {
    const stats = new ReceiverStats({ notKnown: TUTORIAL_WIRE_NOT_KNOWN });
    stats.streamStarted([{ width: 640, height: 480 }]);
    stats.frameReceived(frame());
    stats.frameDecoded(3.5); // a receive time, not a capture time: no latency sample
    stats.frameShown();
    stats.corrupt++;
    const summary = stats.summary();
    expect(summary).toMatchObject({ frames: 1, shown: 1, corrupt: 1, latencyMs: null, senderDropped: null, gaps: null });
    expect(summary.notKnown).toEqual({
      latencyMs: 'the tutorial wire carries no capture time',
      senderDropped: 'the tutorial wire declares no drops',
      gaps: 'the tutorial wire carries no sequence numbers',
    });
    expect(JSON.parse(JSON.stringify(summary))).toMatchObject({ latencyMs: null, senderDropped: null, gaps: null });
    expect(formatStatsLine(summary)).toMatch(
      /, latency n\/a \(the tutorial wire carries no capture time\), rung 0\/0 640x480 \(0 on lower rungs\), dropped n\/a by sender \(the tutorial wire declares no drops\) \+ 0 skipped, gaps n\/a \(the tutorial wire carries no sequence numbers\), corrupt 1, total 1 received \/ 1 shown$/,
    );
    // The camstream wire knows them all: no notKnown at all.
    expect(new ReceiverStats().summary()).not.toHaveProperty('notKnown');
  });
});
