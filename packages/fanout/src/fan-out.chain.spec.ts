import type { RawImage } from '@camstream/media';
import { follows, type ChainLink } from './chain';
import { AdaptiveOutlet, type FlowGate } from './adaptive-outlet';
import { FanOut, type Delivery, type Outlet } from './fan-out';
import type { EncodedRung, RungSource, RungSpec } from './rungs';

// The fan-out with inter-coded rungs (H.264), on a stand-in encoder whose rungs have keyframes at
// known places: what each outlet gets must always be decodable, start at a keyframe (or the kept
// frames since one), and switch rungs only at a keyframe of the new rung.

interface Frame {
  seq: number;
  rung: number;
  chain: ChainLink;
}

const IMAGE: RawImage = { width: 4, height: 4, channels: 3, data: Buffer.alloc(48) };
const LADDER: RungSpec[] = [
  { width: 4, height: 4, bitrate: 1000 },
  { width: 4, height: 4, bitrate: 600 },
];

/**
 * Per rung, a counter of frames encoded and a keyframe every `keyframeInterval` of them (and on the
 * first). A rung can be held (its results wait until released: an encoder starting) or told to
 * refuse a frame (its encoder was busy: no frame, the chain goes on).
 */
class StandInEncoder implements RungSource {
  readonly ladder = LADDER;
  readonly interCoded = true;
  readonly encoded = new Map<number, number[]>();
  private readonly counters = new Map<number, number>();
  private readonly held = new Map<number, Array<() => void>>();
  readonly refuse = new Set<number>();
  readonly starting = new Set<number>();

  constructor(private readonly keyframeInterval: number) {}

  encodeEach(_image: RawImage, rungs: Iterable<number>): Map<number, Promise<EncodedRung | undefined>> {
    const results = new Map<number, Promise<EncodedRung | undefined>>();
    for (const rung of rungs) {
      const list = this.encoded.get(rung) ?? [];
      this.encoded.set(rung, list);
      if (this.refuse.has(rung)) {
        list.push(-1);
        results.set(rung, Promise.resolve(undefined));
        continue;
      }
      const index = this.counters.get(rung) ?? 0;
      this.counters.set(rung, index + 1);
      list.push(index);
      const encoded: EncodedRung = { rung, width: 4, height: 4, payload: Buffer.from(`${rung}:${index}`), chain: { rung, sequence: 100 + rung, index, keyframe: index % this.keyframeInterval === 0 } };
      const waiting = this.held.get(rung);
      results.set(rung, waiting ? new Promise((resolve) => waiting.push(() => resolve(encoded))) : Promise.resolve(encoded));
    }
    return results;
  }

  isStarting(rung: number): boolean {
    return this.starting.has(rung);
  }

  hold(rung: number): void {
    this.held.set(rung, []);
    this.starting.add(rung);
  }

  release(rung: number): void {
    const waiting = this.held.get(rung) ?? [];
    this.held.delete(rung);
    this.starting.delete(rung);
    waiting.forEach((resolve) => resolve());
  }
}

/** A window that admits frames while `open`, with no link figures (adaptation is driven by `rung`). */
class TestGate implements FlowGate {
  open = true;
  readonly capacityBytesPerSecond = undefined;
  readonly sustainedCapacityBytesPerSecond = undefined;
  readonly measuredCapacityBytesPerSecond = undefined;
  readonly deliveredBytesPerSecond = undefined;
  canSend(): boolean {
    return this.open;
  }
  oldestUnackedMs(): number {
    return 0;
  }
}

/** An outlet as the apps build them (AdaptiveOutlet), on the rung the test sets, recording every frame sent, dropped or missed. */
class TestOutlet implements Outlet<Frame> {
  readonly sent: Frame[] = [];
  readonly dropped: number[] = [];
  readonly missedSeqs: number[] = [];
  readonly gate = new TestGate();
  readonly outlet: AdaptiveOutlet<Frame>;
  /** Drops and misses reported before each frame was sent (what its header would declare). */
  readonly declaredAtSend: number[] = [];

  constructor(
    public rung = 0,
    now: () => number = () => 0,
  ) {
    this.outlet = new AdaptiveOutlet<Frame>({
      gate: this.gate,
      bytesOf: () => 10,
      send: (frame) => {
        this.declaredAtSend.push(this.outlet.dropped);
        this.sent.push(frame);
        return true;
      },
      dropped: (frame) => this.dropped.push(frame.seq),
      adaptation: { rungs: LADDER.length, enabled: false },
      maxChainWaitMs: 1000,
      now,
    });
  }

  chooseRung(): number {
    return this.rung;
  }

  offer(delivery: Delivery<Frame>): void {
    this.outlet.offer(delivery);
  }

  continuingRung(): number | undefined {
    return this.outlet.continuingRung();
  }

  missed(seq: number): void {
    this.missedSeqs.push(seq);
    this.outlet.missed();
  }
}

/** Every frame sent decodes: each follows the one before it on its rung, or is a keyframe; seqs only go up. */
function expectDecodable(frames: readonly Frame[]): void {
  expect(frames[0]?.chain.keyframe).toBe(true);
  for (let i = 1; i < frames.length; i++) {
    const [before, frame] = [frames[i - 1]!, frames[i]!];
    expect({ seq: frame.seq, decodes: follows(frame.chain, before.chain), after: frame.seq > before.seq }).toEqual({ seq: frame.seq, decodes: true, after: true });
  }
}

describe('FanOut with inter-coded rungs', () => {
  let encoder: StandInEncoder;
  let fanOut: FanOut<Frame>;
  /** Frames the fan-out holds, and how often. */
  let kept: Map<Frame, number>;

  beforeEach(() => {
    encoder = new StandInEncoder(4);
    kept = new Map();
    fanOut = new FanOut<Frame>({
      encoder,
      prepare: (encoded, published) => ({ seq: published.seq, rung: encoded.rung, chain: encoded.chain! }),
      hold: (frame) => kept.set(frame, (kept.get(frame) ?? 0) + 1),
      letGo: (frame) => {
        const holds = kept.get(frame)!;
        if (holds === 1) kept.delete(frame);
        else kept.set(frame, holds - 1);
      },
      fps: 30,
    });
  });

  const publish = (seq: number) => fanOut.publish({ image: IMAGE, seq, captureTime: seq });
  async function publishAll(from: number, to: number): Promise<void> {
    for (let seq = from; seq <= to; seq++) await publish(seq);
  }

  it('encodes each rung in use once per frame, and each outlet gets every frame of its rung, in order', async () => {
    const outlets = [new TestOutlet(0), new TestOutlet(0), new TestOutlet(1)];
    outlets.forEach((o) => fanOut.add(o));
    await publishAll(0, 9);
    expect(encoder.encoded.get(0)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(encoder.encoded.get(1)).toHaveLength(10);
    for (const outlet of outlets) {
      expect(outlet.sent.map((f) => f.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(outlet.sent.every((f) => f.rung === outlet.rung)).toBe(true);
      expectDecodable(outlet.sent);
    }
  });

  it('gives an outlet that joins mid-sequence the frames since the keyframe first, then the live ones', async () => {
    fanOut.add(new TestOutlet(0));
    await publishAll(0, 6); // keyframes at 0 and 4
    await fanOut.delivered();
    expect([...kept.keys()].map((f) => f.seq)).toEqual([4, 5, 6]);
    const late = new TestOutlet(0);
    fanOut.add(late);
    await publishAll(7, 9);
    expect(late.sent.map((f) => f.seq)).toEqual([4, 5, 6, 7, 8, 9]);
    expectDecodable(late.sent);
    expect(late.dropped).toEqual([]);
    // A keyframe lets go of the frames kept before it.
    await publish(10);
    await publish(11);
    await publish(12);
    await fanOut.delivered();
    expect([...kept.entries()].map(([f, holds]) => [f.seq, holds])).toEqual([[12, 1]]);
  });

  it('moves an outlet to another rung only at a keyframe of that rung, encoding both until then', async () => {
    const outlet = new TestOutlet(0);
    fanOut.add(outlet);
    await publishAll(0, 1);
    const other = new TestOutlet(1);
    fanOut.add(other); // rung 1 starts now: its keyframes fall on seq 2, 6, 10
    await publishAll(2, 3);
    outlet.rung = 1;
    await publishAll(4, 11);
    expect(outlet.sent.map((f) => `${f.seq}@${f.rung}`)).toEqual(['0@0', '1@0', '2@0', '3@0', '4@0', '5@0', '6@1', '7@1', '8@1', '9@1', '10@1', '11@1']);
    expectDecodable(outlet.sent);
    expect(outlet.dropped).toEqual([]);
    // Rung 0 was encoded while the outlet still needed it, and no longer after.
    expect(encoder.encoded.get(0)).toHaveLength(7);
  });

  it('does not wait for a rung whose encoder is starting: only the outlet that needs it waits, and gets its frames in order', async () => {
    const steady = new TestOutlet(0);
    const newcomer = new TestOutlet(1);
    fanOut.add(steady);
    await publishAll(0, 1);
    encoder.hold(1);
    fanOut.add(newcomer);
    await publishAll(2, 4); // resolves though rung 1 has produced nothing yet
    expect(steady.sent.map((f) => f.seq)).toEqual([0, 1, 2, 3, 4]);
    expect(newcomer.sent).toEqual([]);
    encoder.release(1);
    await publish(5);
    await fanOut.delivered();
    expect(newcomer.sent.map((f) => f.seq)).toEqual([2, 3, 4, 5]);
    expectDecodable(newcomer.sent);
  });

  it('declares a frame its rung never made as a drop, in order, and the chain goes on', async () => {
    const outlet = new TestOutlet(0);
    fanOut.add(outlet);
    await publishAll(0, 1);
    encoder.refuse.add(0);
    await publish(2);
    encoder.refuse.delete(0);
    await publishAll(3, 4);
    expect(outlet.missedSeqs).toEqual([2]);
    expect(outlet.sent.map((f) => f.seq)).toEqual([0, 1, 3, 4]);
    expect(outlet.declaredAtSend).toEqual([0, 0, 1, 1]);
    // Frame 3 is the stand-in's frame 2 of rung 0: it follows frame 1, no keyframe needed.
    expect(outlet.sent[2]!.chain).toMatchObject({ index: 2, keyframe: false });
  });

  it('expects a bitrate rung to cost its bitrate before it was measured, and scales from a measured one', async () => {
    expect(fanOut.rungBitrate(1)).toBeCloseTo(600 / 8);
    fanOut.add(new TestOutlet(0));
    await publish(0);
    const measured = fanOut.expectedFrameBytes(0);
    expect(fanOut.expectedFrameBytes(1)).toBeCloseTo(measured * 0.6);
  });

  it('makes a slow outlet skip to the next keyframe, declaring every frame it skipped, and never sends it an undecodable frame', async () => {
    let now = 0;
    const slow = new TestOutlet(0, () => now);
    const fast = new TestOutlet(0);
    fanOut.add(slow);
    fanOut.add(fast);
    for (let seq = 0; seq < 24; seq++) {
      // The slow outlet's window closes for a while twice.
      slow.gate.open = !(seq >= 5 && seq <= 7) && !(seq >= 13 && seq <= 18);
      slow.outlet.acked();
      now = seq * 400; // 400 ms a frame: a frame that waits for the next one has waited too long
      await publish(seq);
    }
    slow.outlet.acked();
    expect(fast.sent).toHaveLength(24);
    expectDecodable(slow.sent);
    const sentSeqs = slow.sent.map((f) => f.seq);
    expect(sentSeqs.length).toBeLessThan(24);
    expect([...sentSeqs, ...slow.dropped].sort((a, b) => a - b)).toEqual([...Array(24).keys()]);
    // After each gap, the next frame is a keyframe, and its count declares exactly the frames missing.
    slow.sent.forEach((frame, i) => {
      if (i === 0) return;
      const gap = frame.seq - slow.sent[i - 1]!.seq - 1;
      expect({ seq: frame.seq, declared: slow.declaredAtSend[i]! - slow.declaredAtSend[i - 1]! }).toEqual({ seq: frame.seq, declared: gap });
      if (gap > 0) expect(frame.chain.keyframe).toBe(true);
    });
  });
});
