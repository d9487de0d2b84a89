export interface AdaptationOptions {
  /** Number of rungs on the ladder (1: nothing to adapt). */
  rungs: number;
  /** Off: always the best rung allowed (only drops keep latency bounded). Default on. */
  enabled?: boolean;
  /**
   * Rungs of an inter-coded stream (H.264): a step up that fails costs a keyframe crossing the
   * link and the wait for the lower rung's next keyframe, so only a measured capacity takes a
   * viewer up (frames too small to time promise nothing), one rung at a time, never as a probe.
   */
  interCoded?: boolean;
  /**
   * The best rung this viewer can take (default 0): e.g. a browser without an H.264 decoder starts
   * below an H.264 rung 0, on the rungs it can decode.
   */
  floor?: number;
  /**
   * A rung is left when its bitrate exceeds the capacity of the last second by this factor
   * (default 1.25): arrival spans end at the read that completes a frame, which comes a little
   * late, so they read a link low (4.1-4.9 Mbit/s on a 5.9 Mbit/s one), and the frames the window
   * drops say more than a dip of that estimate...
   */
  heldDownAbove?: number;
  /** ...but one taken on a guess (an unbounded capacity) in the last failedWithinMs, when it exceeds the latest capacity by this factor (default 1.1). */
  downAbove?: number;
  /** A rung dropping more than this share of the frames it is offered is left (default 0.2)... */
  downDropShare?: number;
  /** ...unless it was taken less than this long ago: the window needs a moment to grow (default 1500 ms). */
  graceMs?: number;
  /** A better rung is taken once its bitrate fits under this share of the capacity... (default 0.9) */
  upBelow?: number;
  /** ...for this long, without drops (default 1000 ms). */
  upHoldMs?: number;
  /** With no drops for this long, the next better rung is tried even when the capacity does not promise it (default 3000 ms). */
  probeAfterMs?: number;
  /** A rung left within this long of being taken failed: it is not tried again for a while (default 5000 ms)... */
  failedWithinMs?: number;
  /** ...first this long, doubling with every failure up to maxBackoffMs (defaults 4000 and 60000 ms). */
  backoffMs?: number;
  maxBackoffMs?: number;
}

/** What the outlet's flow control knows about its link (bytes per second; undefined: not measured yet). */
export interface LinkEstimate {
  /**
   * Measured from how frames arrived, following the last few closely: may flatter a link that
   * lets bursts through. Infinity: frames cross faster than can be timed (loopback, or frames
   * smaller than a shaper's burst).
   */
  readonly capacityBytesPerSecond: number | undefined;
  /** The same over the last second: what a rung that has held is left on. */
  readonly sustainedCapacityBytesPerSecond: number | undefined;
  /** The frames that could be timed alone, over a few seconds (undefined: none could, keyframes included). */
  readonly measuredCapacityBytesPerSecond: number | undefined;
  /** What was really delivered lately. */
  readonly deliveredBytesPerSecond: number | undefined;
}

/** Share of frames dropped is computed over this long. */
const DROP_WINDOW_MS = 1000;

/**
 * Chooses the quality rung for one viewer. Two signals: the link capacity measured from acks
 * (fast, but a shaper that lets bursts through makes it look larger), and the frames the flow
 * window had to drop (slow, but never wrong). It goes down when the current rung is clearly over
 * the capacity of the last second, or when it drops a fifth of its frames; it goes up to the best
 * rung the capacity promises once that has held for a second without drops, and otherwise probes
 * the next better rung after a few quiet seconds. Frames too small to time (a shaper lets them
 * through in its burst) promise every rung: such a guess is left on its own first frames, which
 * do measure the link. A rung that had to be left soon after it was taken
 * is not tried again for a while, longer after each failure, so a wrong estimate costs a short
 * episode of drops now and then, not a flapping stream. The window keeps latency bounded meanwhile.
 */
export class RungChooser {
  private current: number;
  private readonly floor: number;
  private upCandidateSince: number | undefined;
  private lastSwitchAt = -Infinity;
  private lastUpAt = -Infinity;
  /** Taken on a guess (a capacity too fast to measure) rather than on a measured one. */
  private guessedUp = false;
  private lastDropAt: number;
  private readonly started: number;
  private readonly events: Array<{ at: number; dropped: boolean }> = [];
  /** Per rung: not before this time, the backoff that produced it, and whether the rung had been taken on a guess. */
  private readonly backoff = new Map<number, { until: number; ms: number; guessed: boolean }>();
  private readonly o: Required<Omit<AdaptationOptions, 'rungs' | 'enabled' | 'floor' | 'interCoded'>>;

  constructor(private readonly options: AdaptationOptions, now = 0) {
    this.floor = Math.max(0, Math.min(options.floor ?? 0, options.rungs - 1));
    this.current = this.floor;
    this.lastDropAt = -Infinity;
    this.started = now;
    this.o = {
      downAbove: options.downAbove ?? 1.1,
      heldDownAbove: options.heldDownAbove ?? 1.25,
      downDropShare: options.downDropShare ?? 0.2,
      graceMs: options.graceMs ?? 1500,
      upBelow: options.upBelow ?? 0.9,
      upHoldMs: options.upHoldMs ?? 1000,
      probeAfterMs: options.probeAfterMs ?? 3000,
      failedWithinMs: options.failedWithinMs ?? 5000,
      backoffMs: options.backoffMs ?? 4000,
      maxBackoffMs: options.maxBackoffMs ?? 60_000,
    };
  }

  get rung(): number {
    return this.current;
  }

  /** A frame went out to this viewer. */
  frameSent(now: number): void {
    this.note(now, false);
  }

  /** A frame was dropped for this viewer (its window or socket could not take it in time). */
  frameDropped(now: number): void {
    this.note(now, true);
    this.lastDropAt = now;
  }

  /**
   * Re-evaluates with the latest link estimate and each rung's expected bitrate (bytes/s at the
   * source's frame rate). Returns the rung for the next frame.
   */
  update(now: number, link: LinkEstimate, rungBitrate: (rung: number) => number): number {
    if (this.options.enabled === false || this.options.rungs <= 1) return this.current;
    this.expire(now);
    const capacity = link.capacityBytesPerSecond;
    // A guess is left on the first frames that say it does not fit; any other rung on the last
    // second's capacity, not on a dip of a few frames.
    const onTrial = this.guessedUp && now - this.lastUpAt < this.o.failedWithinMs;
    const downCapacity = onTrial ? capacity : link.sustainedCapacityBytesPerSecond;
    const downAbove = onTrial ? this.o.downAbove : this.o.heldDownAbove;
    const best = (limit: number, from = this.floor) => {
      for (let r = from; r < this.options.rungs; r++) if (rungBitrate(r) <= limit) return r;
      return this.options.rungs - 1;
    };
    const last = this.options.rungs - 1;
    if (downCapacity !== undefined && rungBitrate(this.current) > downCapacity * downAbove && this.current < last) {
      return this.switchTo(now, Math.min(last, Math.max(this.current + 1, best(downCapacity))));
    }
    if (this.dropShare() > this.o.downDropShare && now - this.lastSwitchAt >= this.o.graceMs && this.current < last) {
      const delivered = link.deliveredBytesPerSecond;
      const fits = delivered === undefined ? this.current + 1 : best(delivered * this.o.upBelow, this.current + 1);
      return this.switchTo(now, Math.min(last, Math.max(this.current + 1, fits)));
    }
    const candidate = this.options.interCoded ? this.measuredUp(now, link, rungBitrate) : this.upCandidate(now, capacity, rungBitrate);
    if (candidate === undefined || now - this.lastDropAt < this.o.upHoldMs) {
      this.upCandidateSince = undefined;
      return this.current;
    }
    this.upCandidateSince ??= now;
    if (now - this.upCandidateSince >= this.o.upHoldMs) {
      this.switchTo(now, candidate);
      // Frames too small to time promised it: its own frames show at once whether that was so. A
      // probe against a measured capacity is judged by its drops instead: that capacity already said no.
      this.guessedUp = !this.options.interCoded && (capacity === undefined || !Number.isFinite(capacity));
    }
    return this.current;
  }

  /** The better rung worth trying: the best the capacity promises, else the next one after a quiet spell. */
  private upCandidate(now: number, capacity: number | undefined, rungBitrate: (rung: number) => number): number | undefined {
    if (this.current === this.floor) return undefined;
    if (capacity !== undefined) {
      for (let r = this.floor; r < this.current; r++) {
        if (rungBitrate(r) <= capacity * this.o.upBelow && this.allowed(r, now, Number.isFinite(capacity))) return r;
      }
    }
    const next = this.current - 1;
    const quiet = now - Math.max(this.lastDropAt, this.lastSwitchAt, this.started) >= this.o.probeAfterMs;
    return quiet && this.allowed(next, now) ? next : undefined;
  }

  /**
   * Inter-coded rungs: the next better rung, once the measured capacity promises it. When no frame
   * at all could be timed for a few seconds, keyframes included, the link is fast: one rung too.
   */
  private measuredUp(now: number, link: LinkEstimate, rungBitrate: (rung: number) => number): number | undefined {
    const next = this.current - 1;
    const measured = link.measuredCapacityBytesPerSecond ?? (link.capacityBytesPerSecond === Infinity ? Infinity : undefined);
    if (next < this.floor || measured === undefined) return undefined;
    return rungBitrate(next) <= measured * this.o.upBelow && this.allowed(next, now) ? next : undefined;
  }

  private switchTo(now: number, rung: number): number {
    if (rung > this.current && now - this.lastUpAt < this.o.failedWithinMs) {
      // The rung taken lately could not be kept: wait longer before trying it again.
      const failed = this.current;
      const previous = this.backoff.get(failed);
      const ms = previous ? Math.min(this.o.maxBackoffMs, previous.ms * 2) : this.o.backoffMs;
      this.backoff.set(failed, { until: now + ms, ms, guessed: this.guessedUp });
    }
    if (rung < this.current) this.lastUpAt = now;
    else this.guessedUp = false;
    this.current = rung;
    this.lastSwitchAt = now;
    this.upCandidateSince = undefined;
    this.events.length = 0; // drops on the old rung say nothing about the new one
    return rung;
  }

  private allowed(rung: number, now: number, measured = false): boolean {
    const b = this.backoff.get(rung);
    // A rung that failed on a guess is taken again as soon as a measurement promises it.
    return b === undefined || now >= b.until || (measured && b.guessed);
  }

  private note(now: number, dropped: boolean): void {
    this.events.push({ at: now, dropped });
    this.expire(now);
  }

  private expire(now: number): void {
    while (this.events.length > 0 && now - this.events[0]!.at > DROP_WINDOW_MS) this.events.shift();
    // A rung kept for a good while after it was taken has proved itself: forget its failures.
    if (now - this.lastUpAt > 4 * this.o.failedWithinMs) this.backoff.delete(this.current);
  }

  private dropShare(): number {
    if (this.events.length < 5) return 0;
    return this.events.filter((e) => e.dropped).length / this.events.length;
  }
}
