import { AdaptiveOutlet, type FlowGate } from './adaptive-outlet';
import type { Delivery } from './fan-out';

/** A window that admits `room` bytes in flight; acks give them back. */
class TestGate implements FlowGate {
  inFlight = 0;
  capacityBytesPerSecond: number | undefined = undefined;
  sustainedCapacityBytesPerSecond: number | undefined = undefined;
  measuredCapacityBytesPerSecond: number | undefined = undefined;
  deliveredBytesPerSecond: number | undefined = undefined;
  constructor(public room: number) {}
  canSend(bytes: number): boolean {
    return this.inFlight === 0 || this.inFlight + bytes <= this.room;
  }
  oldestUnackedMs(): number {
    return 0;
  }
}

function delivery(frame: number, settled: Array<[number, boolean]>): Delivery<number> {
  return { frame, settle: (taken) => settled.push([frame, taken]) };
}

describe('AdaptiveOutlet', () => {
  it('sends what the window admits, holds the newest, declares what it replaced, and sends on ack', () => {
    const gate = new TestGate(250);
    const written: number[] = [];
    const declared: number[] = [];
    const settled: Array<[number, boolean]> = [];
    const outlet = new AdaptiveOutlet<number>({
      gate,
      bytesOf: () => 100,
      send: (frame) => {
        written.push(frame);
        gate.inFlight += 100;
        return true;
      },
      dropped: (frame) => declared.push(frame),
      adaptation: { rungs: 1 },
      now: () => 0,
    });
    for (const f of [1, 2, 3, 4, 5]) outlet.offer(delivery(f, settled));
    expect(written).toEqual([1, 2]);
    expect(declared).toEqual([3, 4]);
    expect([outlet.sent, outlet.dropped]).toEqual([2, 2]);
    gate.inFlight = 0;
    outlet.acked();
    expect(written).toEqual([1, 2, 5]);
    expect(settled).toEqual([[1, true], [2, true], [3, false], [4, false], [5, true]]);
  });

  it('moves down the ladder when its window drops frames, reported through the chooser', () => {
    let now = 0;
    const gate = new TestGate(100);
    const outlet = new AdaptiveOutlet<number>({
      gate,
      bytesOf: () => 100,
      send: () => {
        gate.inFlight += 100;
        return true;
      },
      adaptation: { rungs: 4, graceMs: 0 },
      now: () => now,
    });
    // Nothing is ever acknowledged: after the first frame, every one is dropped.
    for (let f = 0; f < 40; f++, now += 33) outlet.offer(delivery(f, []));
    expect(outlet.chooseRung(now, (r) => 1000 / (r + 1))).toBeGreaterThan(0);
  });
});
