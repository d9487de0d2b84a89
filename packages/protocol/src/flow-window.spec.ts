import { FlowWindow } from './flow-window';

/** A link of `bytesPerMs` capacity and `rttMs` round trip, frames sent one at a time and acked on arrival. */
function deliver(flow: FlowWindow, seq: number, bytes: number, sentAt: number, link: { bytesPerMs: number; rttMs: number }): number {
  flow.sent(seq, bytes, sentAt);
  const spanMs = bytes / link.bytesPerMs;
  const ackAt = sentAt + link.rttMs + spanMs;
  flow.acked({ seq, spanMs, spanBytes: bytes - 1460 }, ackAt);
  return ackAt;
}

describe('FlowWindow', () => {
  it('lets one frame go when nothing is in flight, however large, and holds the next until acked', () => {
    const flow = new FlowWindow({ initialWindowBytes: 1000 });
    expect(flow.canSend(5000)).toBe(true);
    flow.sent(0, 5000, 0);
    expect(flow.canSend(10)).toBe(false);
    expect(flow.inFlightBytes).toBe(5000);
    flow.acked({ seq: 0, spanMs: 10, spanBytes: 4000 }, 20);
    expect(flow.inFlightBytes).toBe(0);
    expect(flow.canSend(5000)).toBe(true);
  });

  it('sizes the window as capacity times (round trip + queue target)', () => {
    const flow = new FlowWindow({ queueTargetMs: 60 });
    // 725 bytes/ms (5.8 Mbit/s), 20 ms round trip, 24 KB frames every 33 ms.
    let now = 0;
    for (let seq = 0; seq < 20; seq++) {
      deliver(flow, seq, 24_000, now, { bytesPerMs: 725, rttMs: 20 });
      now += 33;
    }
    expect(flow.capacityBytesPerSecond! / 1000).toBeCloseTo(725 * (22_540 / 24_000), 0);
    expect(flow.roundTripMs).toBeCloseTo(20, 5);
    expect(flow.windowBytes).toBeCloseTo((flow.capacityBytesPerSecond! / 1000) * 80, -1);
  });

  it('settles every earlier frame with a later ack (acks are cumulative)', () => {
    const flow = new FlowWindow();
    flow.sent(1, 100, 0);
    flow.sent(2, 200, 1);
    flow.sent(5, 300, 2);
    flow.acked({ seq: 2, spanMs: 0, spanBytes: 0 }, 5);
    expect([flow.inFlightFrames, flow.inFlightBytes, flow.ackedBytes]).toEqual([1, 300, 300]);
  });

  it('refuses an ack for a frame never sent or already acknowledged', () => {
    const flow = new FlowWindow();
    flow.sent(3, 100, 0);
    expect(() => flow.acked({ seq: 4, spanMs: 0, spanBytes: 0 }, 1)).toThrow('ack for frame 4, which was never sent');
    flow.acked({ seq: 3, spanMs: 0, spanBytes: 0 }, 1);
    expect(() => flow.acked({ seq: 3, spanMs: 0, spanBytes: 0 }, 2)).toThrow('ack for frame 3, which was already acknowledged');
  });

  it('notices a slower link within three frames (the sustained capacity only when most of the last second agrees), and a faster one only when most of the last second agrees', () => {
    const flow = new FlowWindow();
    let now = 0;
    let seq = 0;
    for (; seq < 30; seq++, now += 33) deliver(flow, seq, 40_000, now, { bytesPerMs: 1250, rttMs: 5 });
    const fast = flow.capacityBytesPerSecond!;
    for (let i = 0; i < 3; i++, seq++, now += 33) deliver(flow, seq, 40_000, now, { bytesPerMs: 300, rttMs: 5 });
    expect(flow.capacityBytesPerSecond!).toBeLessThan(fast * 0.3);
    // The last second's median has not moved: three frames are a dip, not yet a slower link.
    expect(flow.sustainedCapacityBytesPerSecond!).toBeCloseTo(fast, -3);
    for (let i = 0; i < 30; i++, seq++, now += 33) deliver(flow, seq, 40_000, now, { bytesPerMs: 300, rttMs: 5 });
    expect(flow.sustainedCapacityBytesPerSecond!).toBeCloseTo((fast * 300) / 1250, -3);
    // After a second of the slow link, three fast frames are not enough to believe it recovered.
    for (let i = 0; i < 3; i++, seq++, now += 33) deliver(flow, seq, 40_000, now, { bytesPerMs: 1250, rttMs: 5 });
    expect(flow.capacityBytesPerSecond!).toBeLessThan(fast * 0.3);
    for (let i = 0; i < 30; i++, seq++, now += 33) deliver(flow, seq, 40_000, now, { bytesPerMs: 1250, rttMs: 5 });
    expect(flow.capacityBytesPerSecond!).toBeCloseTo(fast, -3);
  });

  it('measures the link from the frames that could be timed alone, over a few seconds', () => {
    const flow = new FlowWindow();
    expect(flow.measuredCapacityBytesPerSecond).toBeUndefined();
    let now = 0;
    let seq = 0;
    // Small frames cross at once (behind a shaper's burst), one in 30 is large enough to take 20 ms.
    for (; seq < 90; seq++, now += 33) {
      flow.sent(seq, 6_000, now);
      const large = seq % 30 === 0;
      flow.acked({ seq, spanMs: large ? 20 : 0.5, spanBytes: large ? 5_500 : 4_500 }, now + 10);
    }
    expect(flow.capacityBytesPerSecond).toBe(Infinity);
    expect(flow.measuredCapacityBytesPerSecond).toBeCloseTo(275_000, -3);
    // Five seconds of small frames only: nothing measured any more.
    for (let i = 0; i < 160; i++, seq++, now += 33) {
      flow.sent(seq, 6_000, now);
      flow.acked({ seq, spanMs: 0.5, spanBytes: 4_500 }, now + 10);
    }
    expect(flow.measuredCapacityBytesPerSecond).toBeUndefined();
  });

  it('takes frames that arrive within a couple of milliseconds as a path too fast to measure: the window follows what was delivered', () => {
    const flow = new FlowWindow({ queueTargetMs: 50 });
    let now = 0;
    for (let seq = 0; seq < 10; seq++) {
      flow.sent(seq, 45_000, now);
      now += 1;
      flow.acked({ seq, spanMs: 0.5, spanBytes: 30_000 }, now);
    }
    expect(flow.capacityBytesPerSecond).toBe(Infinity);
    // 45 KB per ms delivered: 1.25 x 45 MB/s x (round trip + 50 ms).
    expect(flow.windowBytes).toBe(Math.ceil(1.25 * 45_000 * (flow.roundTripMs! + 50)));
  });

  it('reports how long the oldest frame has waited for its ack', () => {
    const flow = new FlowWindow();
    expect(flow.oldestUnackedMs(100)).toBe(0);
    flow.sent(0, 10, 100);
    flow.sent(1, 10, 150);
    expect(flow.oldestUnackedMs(400)).toBe(300);
    flow.acked({ seq: 0, spanMs: 0, spanBytes: 0 }, 410);
    expect(flow.oldestUnackedMs(450)).toBe(300);
  });
});

describe('FlowWindow delivery cap', () => {
  it('keeps the window near what was delivered when arrival spans flatter the link (a shaper letting bursts through)', () => {
    const flow = new FlowWindow({ queueTargetMs: 50 });
    // Acks say every frame arrived at 10 MB/s, but only one 20 KB frame is acknowledged every 100 ms.
    let now = 0;
    for (let seq = 0; seq < 20; seq++) {
      flow.sent(seq, 20_000, now);
      now += 100;
      flow.acked({ seq, spanMs: 2, spanBytes: 20_000 }, now);
    }
    expect(flow.capacityBytesPerSecond).toBe(10_000_000);
    expect(flow.deliveredBytesPerSecond).toBeCloseTo(200_000, -3);
    // 1.25 x 200 kB/s x (round trip + 50 ms), not 10 MB/s x ...
    expect(flow.windowBytes).toBeLessThan(1.25 * 200 * (flow.roundTripMs! + 50) + 1);
  });

  it('has no delivery rate before the first ack', () => {
    expect(new FlowWindow().deliveredBytesPerSecond).toBeUndefined();
  });
});
