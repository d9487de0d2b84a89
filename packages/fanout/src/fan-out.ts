import type { RawImage } from '@camstream/media';
import { relativeRungSize, type EncodedRung, type RungEncoder } from './rungs';

/** One captured image to send to every outlet, on the rung each wants. */
export interface PublishedImage {
  readonly image: RawImage;
  /** The frame's number in the stream: the same on every rung. */
  readonly seq: number;
  /** Wall-clock capture time, ms since the Unix epoch. */
  readonly captureTime: number;
  /** Rung 0 already encoded (a receiver forwarding its JPEG stream): used as is, never re-encoded. */
  readonly encodedTop?: Buffer;
}

/** What the fan-out hands an outlet: a frame of its rung, to settle once written or dropped. */
export interface Delivery<P> {
  readonly frame: P;
  /** Call once: true when the frame was written, false when it will never be (replaced, or the outlet left). */
  settle(taken: boolean): void;
}

/** A destination of the fan-out: a TCP receiver, a browser WebSocket. */
export interface Outlet<P> {
  /** The rung for the next frame, given each rung's expected bitrate in bytes/s. */
  chooseRung(now: number, rungBitrate: (rung: number) => number): number;
  /** Takes the frame of its rung (into its latest-wins writer). */
  offer(delivery: Delivery<P>): void;
}

export interface FanOutOptions<P> {
  encoder: RungEncoder;
  /** Builds what the outlets of one rung get, once per rung and frame (e.g. a prepared frame message). */
  prepare(encoded: EncodedRung, published: PublishedImage): P;
  /** The source's nominal frame rate, for rung bitrates; 0: measured from publish() calls. */
  fps: number;
  now?(): number;
}

export interface Published<P> {
  /** What each rung in use was encoded to. */
  readonly rungs: ReadonlyMap<number, EncodedRung>;
  readonly frames: ReadonlyMap<number, P>;
  readonly encodeMs: number;
  /** Settles once some outlet wrote the frame, or none holds it any more (all dropped it, or left). */
  readonly taken: Promise<void>;
}

/** Settles `taken` once one holder took the frame, or every holder let it go. */
class DeliveryCount {
  readonly taken: Promise<void>;
  private resolve!: () => void;
  private done = false;

  constructor(private holders: number) {
    this.taken = new Promise<void>((resolve) => (this.resolve = resolve));
    if (holders === 0) this.finish();
  }

  settle(taken: boolean): void {
    this.holders--;
    if (taken || this.holders <= 0) this.finish();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.resolve();
  }
}

function* outletsOf<P>(chosen: ReadonlyMap<Outlet<P>, number>, rung: number): Iterable<Outlet<P>> {
  for (const [outlet, r] of chosen) if (r === rung) yield outlet;
}

/** Weight of the newest frame in each rung's average size. */
const SIZE_SMOOTHING = 0.1;

/**
 * Encode once, fan out to every outlet: each captured image is encoded for each rung some outlet
 * is on, once whatever the number of outlets on it, and only for rungs in use; every outlet of a
 * rung gets the same prepared frame. Back-pressure is explicit: `taken` says when the frame went
 * out to someone, so a source without a pace of its own runs as fast as the fastest outlet.
 */
export class FanOut<P> {
  private readonly outlets = new Set<Outlet<P>>();
  /** Average encoded bytes per frame of each rung measured so far. */
  private readonly bytesPerFrame = new Map<number, number>();
  private lastPublishAt: number | undefined;
  private measuredFps = 0;
  private readonly now: () => number;

  constructor(private readonly options: FanOutOptions<P>) {
    this.now = options.now ?? (() => performance.now());
  }

  get size(): number {
    return this.outlets.size;
  }

  add(outlet: Outlet<P>): void {
    this.outlets.add(outlet);
  }

  delete(outlet: Outlet<P>): boolean {
    return this.outlets.delete(outlet);
  }

  /** Expected bytes per second of a rung at the source's frame rate. */
  rungBitrate(rung: number): number {
    const fps = this.options.fps > 0 ? this.options.fps : this.measuredFps;
    return this.expectedFrameBytes(rung) * fps;
  }

  /** Expected bytes of one frame on `rung`: measured when it was encoded lately, else scaled from a measured rung. */
  expectedFrameBytes(rung: number): number {
    const measured = this.bytesPerFrame.get(rung);
    if (measured !== undefined) return measured;
    const ladder = this.options.encoder.ladder;
    const spec = ladder[rung];
    if (spec === undefined) return Infinity;
    // Scale from the nearest measured rung.
    for (const [other, bytes] of this.bytesPerFrame) {
      const otherSpec = ladder[other];
      if (otherSpec) return (bytes * relativeRungSize(spec, ladder[0]!)) / relativeRungSize(otherSpec, ladder[0]!);
    }
    return 0;
  }

  async publish(published: PublishedImage): Promise<Published<P>> {
    const now = this.now();
    if (this.lastPublishAt !== undefined && now > this.lastPublishAt) {
      const fps = 1000 / (now - this.lastPublishAt);
      this.measuredFps = this.measuredFps === 0 ? fps : this.measuredFps + SIZE_SMOOTHING * (fps - this.measuredFps);
    }
    this.lastPublishAt = now;
    // Each outlet's rung is decided before encoding, so it gets exactly a rung that was encoded.
    const chosen = new Map<Outlet<P>, number>();
    for (const outlet of this.outlets) chosen.set(outlet, outlet.chooseRung(now, (r) => this.rungBitrate(r)));
    const delivery = new DeliveryCount(chosen.size);
    const pending = this.options.encoder.encodeEach(published.image, new Set(chosen.values()), published.encodedTop);
    const rungs = new Map<number, EncodedRung>();
    const frames = new Map<number, P>();
    // Each rung goes out as soon as it is encoded: the full-size rung never waits for a scaled one.
    const delivered = [...pending].map(async ([rung, encoding]) => {
      let encoded: EncodedRung;
      try {
        encoded = await encoding;
      } catch (error) {
        for (const _outlet of outletsOf(chosen, rung)) delivery.settle(false);
        throw error;
      }
      rungs.set(rung, encoded);
      const previous = this.bytesPerFrame.get(rung);
      const bytes = encoded.payload.length;
      this.bytesPerFrame.set(rung, previous === undefined ? bytes : previous + SIZE_SMOOTHING * (bytes - previous));
      const frame = this.options.prepare(encoded, published);
      frames.set(rung, frame);
      for (const outlet of outletsOf(chosen, rung)) {
        // An outlet that left while the frame was being encoded gets nothing.
        if (!this.outlets.has(outlet)) {
          delivery.settle(false);
          continue;
        }
        let settled = false;
        outlet.offer({
          frame,
          settle: (taken) => {
            if (settled) return;
            settled = true;
            delivery.settle(taken);
          },
        });
      }
    });
    const started = this.now();
    const results = await Promise.allSettled(delivered);
    const encodeMs = this.now() - started;
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return { rungs, frames, encodeMs, taken: delivery.taken };
  }
}
