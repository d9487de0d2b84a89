import type { RawImage } from '@camstream/media';
import type { ChainLink } from './chain';
import { relativeRungSize, type EncodedRung, type RungSource } from './rungs';

/** One captured image to send to every outlet, on the rung each wants. */
export interface PublishedImage {
  readonly image: RawImage;
  /** The frame's number in the stream: the same on every rung. */
  readonly seq: number;
  /** Wall-clock capture time, ms since the Unix epoch. */
  readonly captureTime: number;
  /** Rung 0 already encoded (a receiver forwarding its JPEG or H.264 stream): used as is, never re-encoded. */
  readonly encodedTop?: Buffer;
  /** Where `encodedTop` stands in its chain, when it is inter-coded (a forwarded H.264 access unit). */
  readonly topChain?: ChainLink;
  /**
   * Offer the frame only once this settles (it must not reject); it is encoded meanwhile. The pump
   * of an unpaced source passes it: the previous frame must be taken first, but the encoder need
   * not wait for that.
   */
  readonly offerAfter?: Promise<void>;
}

/** What the fan-out hands an outlet: a frame of its rung, to settle once written or dropped. */
export interface Delivery<P> {
  readonly frame: P;
  /** Inter-coded frames: where it stands in its rung's chain (what a writer needs to skip to a keyframe). */
  readonly chain?: ChainLink;
  /** Call once: true when the frame was written, false when it will never be (replaced, or the outlet left). */
  settle(taken: boolean): void;
}

/** A destination of the fan-out: a TCP receiver, a browser WebSocket. */
export interface Outlet<P> {
  /**
   * The rung for the next frame, given each rung's expected bitrate in bytes/s. A negative rung:
   * this outlet takes nothing from this fan-out for that frame (it gets its frames elsewhere).
   */
  chooseRung(now: number, rungBitrate: (rung: number) => number): number;
  /** Takes the frame of its rung (into its latest-wins writer). */
  offer(delivery: Delivery<P>): void;
  /**
   * Inter-coded streams: the rung whose frames it can go on taking without a keyframe, or
   * undefined when it needs a keyframe (it joined, or dropped a frame). Absent: frames stand alone.
   */
  continuingRung?(): number | undefined;
  /** Inter-coded streams: no frame of this seq will come (its rung's encoder made none); declare it. */
  missed?(seq: number): void;
}

export interface FanOutOptions<P> {
  encoder: RungSource;
  /** Frames depend on the ones before them on their rung (default: what the encoder says). */
  interCoded?: boolean;
  /**
   * Inter-coded: the fan-out holds each prepared frame while it still has to offer it (to outlets
   * waiting in order) or keeps it for outlets that join (the frames since its rung's keyframe),
   * and lets go of it once neither holds: hold() and letGo() are called in pairs.
   */
  hold?(frame: P): void;
  letGo?(frame: P): void;
  /** Inter-coded: most frames kept per rung (default 600, 20 s at 30 fps); a longer sequence is not kept. */
  maxKeptFrames?: number;
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
  /** Settles once no encoder reads the image any more (inter-coded rungs may still encode after publish() resolved). */
  readonly imageReleased: Promise<void>;
}

/** A frame of one rung of one publish, ready to be offered. */
interface ReadyFrame<P> {
  readonly encoded: EncodedRung;
  readonly frame: P;
}

interface KeptFrame<P> {
  readonly frame: P;
  readonly chain: ChainLink;
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
 *
 * Inter-coded rungs (H.264: frames that need the ones before them) add three rules. An outlet
 * moves to another rung only at a keyframe of that rung: until then both rungs are encoded and it
 * keeps getting its current one. An outlet that joins gets the frames of its rung since the last
 * keyframe first (they are kept per rung), so its first picture comes at once. And each outlet
 * gets its frames strictly in order, one per publish, while publish() waits only for rungs whose
 * encoders are running: an encoder that is starting holds up the outlets waiting for it, nobody else.
 */
export class FanOut<P> {
  private readonly outlets = new Set<Outlet<P>>();
  /** Average encoded bytes per frame of each rung measured so far. */
  private readonly bytesPerFrame = new Map<number, number>();
  private lastPublishAt: number | undefined;
  private measuredFps = 0;
  private readonly now: () => number;
  private readonly interCoded: boolean;
  /** Inter-coded: per rung, the frames since its last keyframe. */
  private readonly kept = new Map<number, Array<KeptFrame<P>>>();
  /** Inter-coded: each outlet's deliveries, chained so that they happen in publish order. */
  private readonly tails = new Map<Outlet<P>, Promise<void>>();
  /** Inter-coded: outlets that were offered a frame already (the others get the kept frames first). */
  private readonly started = new WeakSet<Outlet<P>>();

  constructor(private readonly options: FanOutOptions<P>) {
    this.now = options.now ?? (() => performance.now());
    this.interCoded = options.interCoded ?? options.encoder.interCoded ?? false;
  }

  get size(): number {
    return this.outlets.size;
  }

  add(outlet: Outlet<P>): void {
    this.outlets.add(outlet);
  }

  delete(outlet: Outlet<P>): boolean {
    this.tails.delete(outlet);
    return this.outlets.delete(outlet);
  }

  /** Frames kept for joining outlets on `rung` (inter-coded): from its last keyframe to its newest frame. */
  keptFrames(rung: number): readonly P[] {
    return (this.kept.get(rung) ?? []).map((k) => k.frame);
  }

  /** Resolves once every frame published so far was offered to its outlets (inter-coded: they may wait for a starting encoder). */
  async delivered(): Promise<void> {
    await Promise.all([...this.tails.values()]);
  }

  /** Lets go of every kept frame (the stream ends). */
  clearKept(): void {
    for (const rung of [...this.kept.keys()]) this.dropKept(rung);
  }

  /** Frames per second: the source's nominal rate, else as measured from publish() calls (0 before two). */
  get fps(): number {
    return this.options.fps > 0 ? this.options.fps : this.measuredFps;
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
    const fps = this.options.fps > 0 ? this.options.fps : this.measuredFps;
    // Scale from the nearest measured rung.
    for (const [other, bytes] of this.bytesPerFrame) {
      const otherSpec = ladder[other];
      if (otherSpec) return (bytes * relativeRungSize(spec, ladder[0]!)) / relativeRungSize(otherSpec, ladder[0]!);
    }
    // A bitrate rung says what it will cost before anything was measured.
    if (spec.bitrate !== undefined && fps > 0) return spec.bitrate / 8 / fps;
    return 0;
  }

  async publish(published: PublishedImage): Promise<Published<P>> {
    const now = this.now();
    if (this.lastPublishAt !== undefined && now > this.lastPublishAt) {
      const fps = 1000 / (now - this.lastPublishAt);
      this.measuredFps = this.measuredFps === 0 ? fps : this.measuredFps + SIZE_SMOOTHING * (fps - this.measuredFps);
    }
    this.lastPublishAt = now;
    if (this.interCoded) return this.publishChained(published, now);
    // Each outlet's rung is decided before encoding, so it gets exactly a rung that was encoded.
    const chosen = new Map<Outlet<P>, number>();
    for (const outlet of this.outlets) {
      const rung = outlet.chooseRung(now, (r) => this.rungBitrate(r));
      if (rung >= 0) chosen.set(outlet, rung);
    }
    const delivery = new DeliveryCount(chosen.size);
    const started = this.now();
    /** When the last rung was encoded: the time spent waiting for `offerAfter` is no encoding. */
    let encodedAt = started;
    const pending = this.options.encoder.encodeEach(published.image, new Set(chosen.values()), published.encodedTop, published.topChain);
    const rungs = new Map<number, EncodedRung>();
    const frames = new Map<number, P>();
    // Each rung goes out as soon as it is encoded: the full-size rung never waits for a scaled one.
    const delivered = [...pending].map(async ([rung, encoding]) => {
      let encoded: EncodedRung | undefined;
      try {
        encoded = await encoding;
      } catch (error) {
        for (const _outlet of outletsOf(chosen, rung)) delivery.settle(false);
        throw error;
      }
      encodedAt = Math.max(encodedAt, this.now());
      if (!encoded) {
        for (const _outlet of outletsOf(chosen, rung)) delivery.settle(false);
        return;
      }
      rungs.set(rung, encoded);
      this.measure(rung, encoded);
      const frame = this.options.prepare(encoded, published);
      frames.set(rung, frame);
      if (published.offerAfter) await published.offerAfter;
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
    const results = await Promise.allSettled(delivered);
    const encodeMs = encodedAt - started;
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return { rungs, frames, encodeMs, taken: delivery.taken, imageReleased: Promise.resolve() };
  }

  private measure(rung: number, encoded: EncodedRung): void {
    const previous = this.bytesPerFrame.get(rung);
    const bytes = encoded.payload.length;
    this.bytesPerFrame.set(rung, previous === undefined ? bytes : previous + SIZE_SMOOTHING * (bytes - previous));
  }

  private async publishChained(published: PublishedImage, now: number): Promise<Published<P>> {
    const { encoder } = this.options;
    // Per outlet: the rung it chose, and the rung it is on, if it must stay there until a keyframe of the chosen one.
    const plans = new Map<Outlet<P>, { chosen: number; staying: number | undefined }>();
    for (const outlet of this.outlets) {
      const chosen = outlet.chooseRung(now, (r) => this.rungBitrate(r));
      if (chosen < 0) continue;
      const continuing = outlet.continuingRung?.();
      const staying = continuing !== undefined && continuing !== chosen && encoder.ladder[continuing] !== undefined ? continuing : undefined;
      plans.set(outlet, { chosen, staying });
    }
    // A rung 0 handed in encoded costs nothing: kept for outlets that join even while nobody watches.
    const wanted = new Set<number>(published.encodedTop ? [0] : []);
    /** Per rung, how many outlets' deliveries need its frame: it is held until they all happened. */
    const users = new Map<number, number>();
    for (const { chosen, staying } of plans.values()) {
      for (const rung of staying === undefined ? [chosen] : [chosen, staying]) {
        wanted.add(rung);
        users.set(rung, (users.get(rung) ?? 0) + 1);
      }
    }
    // Decided before the frame goes in: a rung whose encoder starts now is not waited for.
    const starting = new Set([...wanted].filter((rung) => encoder.isStarting?.(rung) ?? false));
    const delivery = new DeliveryCount(plans.size);
    const started = this.now();
    const pending = encoder.encodeEach(published.image, wanted, published.encodedTop, published.topChain);
    let failure: unknown;
    const ready = new Map<number, Promise<ReadyFrame<P> | undefined>>();
    for (const [rung, encoding] of pending) {
      ready.set(
        rung,
        encoding.then(
          (encoded) => {
            if (!encoded) return undefined;
            this.measure(rung, encoded);
            const frame = this.options.prepare(encoded, published);
            if (users.has(rung)) this.options.hold?.(frame);
            this.keep(rung, encoded, frame);
            return { encoded, frame };
          },
          (error: unknown) => {
            failure ??= error;
            this.dropKept(rung);
            return undefined;
          },
        ),
      );
    }
    for (const [outlet, plan] of plans) {
      const settle = once((taken: boolean) => delivery.settle(taken));
      const previous = this.tails.get(outlet) ?? Promise.resolve();
      const done = (published.offerAfter ? Promise.all([previous, published.offerAfter]) : previous).then(async () => {
        const chosen = await ready.get(plan.chosen);
        const staying = plan.staying === undefined ? undefined : await ready.get(plan.staying);
        try {
          this.deliver(outlet, published.seq, chosen, staying, settle);
        } finally {
          for (const used of [chosen, staying]) {
            if (!used) continue;
            const left = users.get(used.encoded.rung)! - 1;
            users.set(used.encoded.rung, left);
            if (left === 0) this.options.letGo?.(used.frame);
          }
        }
      });
      this.tails.set(outlet, done);
      void done.then(() => {
        if (this.tails.get(outlet) === done) this.tails.delete(outlet);
      });
    }
    const live = [...wanted].filter((rung) => !starting.has(rung));
    const results = await Promise.all(live.map(async (rung) => [rung, await ready.get(rung)] as const));
    const encodeMs = this.now() - started;
    if (failure !== undefined) throw failure;
    const rungs = new Map<number, EncodedRung>();
    const frames = new Map<number, P>();
    for (const [rung, result] of results) {
      if (!result) continue;
      rungs.set(rung, result.encoded);
      frames.set(rung, result.frame);
    }
    const imageReleased = Promise.allSettled([...pending.values()]).then(() => undefined);
    return { rungs, frames, encodeMs, taken: delivery.taken, imageReleased };
  }

  /**
   * Offers an outlet its frame of one publish: the chosen rung's when it is a keyframe or the
   * outlet is on that rung, else the rung it stays on until then. An outlet's first frame comes
   * after the frames kept since its rung's keyframe.
   */
  private deliver(outlet: Outlet<P>, seq: number, chosen: ReadyFrame<P> | undefined, staying: ReadyFrame<P> | undefined, settle: (taken: boolean) => void): void {
    if (!this.outlets.has(outlet)) return settle(false);
    const continuing = outlet.continuingRung?.();
    const switchNow = chosen !== undefined && (chosen.encoded.chain?.keyframe === true || continuing === chosen.encoded.rung);
    const pick = switchNow ? chosen : staying !== undefined && continuing === staying.encoded.rung ? staying : chosen;
    if (!pick) {
      outlet.missed?.(seq);
      return settle(false);
    }
    if (!this.started.has(outlet)) {
      this.started.add(outlet);
      if (pick.encoded.chain && !pick.encoded.chain.keyframe) {
        for (const kept of this.keptBefore(pick)) outlet.offer({ frame: kept.frame, chain: kept.chain, settle: () => undefined });
      }
    }
    outlet.offer({ frame: pick.frame, ...(pick.encoded.chain ? { chain: pick.encoded.chain } : {}), settle });
  }

  /** The kept frames of `pick`'s rung before it, from the keyframe on; none if its chain was not kept whole. */
  private keptBefore(pick: ReadyFrame<P>): Array<KeptFrame<P>> {
    const kept = this.kept.get(pick.encoded.rung) ?? [];
    const at = kept.findIndex((k) => k.frame === pick.frame);
    return at > 0 ? kept.slice(0, at) : [];
  }

  /** Keeps an inter-coded frame for outlets that join: from its rung's keyframe on, while the chain is whole. */
  private keep(rung: number, encoded: EncodedRung, frame: P): void {
    const chain = encoded.chain;
    if (!chain) return;
    const kept = this.kept.get(rung);
    const last = kept?.at(-1);
    if (chain.keyframe) {
      this.dropKept(rung);
    } else if (!kept || !last || last.chain.sequence !== chain.sequence || last.chain.index !== chain.index - 1 || kept.length >= (this.options.maxKeptFrames ?? DEFAULT_MAX_KEPT_FRAMES)) {
      // A hole in the chain, or too long a sequence: nothing to start from until the next keyframe.
      this.dropKept(rung);
      return;
    }
    this.options.hold?.(frame);
    const list = this.kept.get(rung) ?? [];
    list.push({ frame, chain });
    this.kept.set(rung, list);
  }

  private dropKept(rung: number): void {
    const kept = this.kept.get(rung);
    if (!kept) return;
    this.kept.delete(rung);
    for (const k of kept) this.options.letGo?.(k.frame);
  }
}

/** Frames kept per rung for joining outlets: 20 s at 30 fps, far above a keyframe interval. */
const DEFAULT_MAX_KEPT_FRAMES = 600;

function once<T>(fn: (value: T) => void): (value: T) => void {
  let called = false;
  return (value) => {
    if (called) return;
    called = true;
    fn(value);
  };
}
