export interface AdaptationOptions {
  /** Number of rungs on the ladder (1: nothing to adapt). */
  rungs: number;
  /** Off: always rung 0 (only drops keep latency bounded). Default on. */
  enabled?: boolean;
  /** A rung whose bitrate exceeds the capacity by this factor is left at once (default 1.1). */
  downAbove?: number;
  /** A better rung is taken once its bitrate fits under this share of the capacity... (default 0.9) */
  upBelow?: number;
  /** ...for this long (default 1000 ms). */
  upHoldMs?: number;
}

/**
 * Chooses the quality rung for one viewer from its measured link capacity: the best rung whose
 * bitrate fits. It goes down as soon as the current rung is clearly too much for the link, and
 * up only once a better rung has fitted comfortably for a while, so it does not flap. A rung a
 * little over the capacity (up to `downAbove`) is kept: the flow window then drops a few frames,
 * and the link stays fully used rather than half empty on the rung below.
 */
export class RungChooser {
  private current = 0;
  private upCandidateSince: number | undefined;
  private readonly downAbove: number;
  private readonly upBelow: number;
  private readonly upHoldMs: number;

  constructor(private readonly options: AdaptationOptions) {
    this.downAbove = options.downAbove ?? 1.1;
    this.upBelow = options.upBelow ?? 0.9;
    this.upHoldMs = options.upHoldMs ?? 1000;
  }

  get rung(): number {
    return this.current;
  }

  /**
   * Re-evaluates with the latest capacity (bytes/s; undefined: not measured yet, stay) and each
   * rung's expected bitrate (bytes/s at the source's frame rate). Returns the rung for the next frame.
   */
  update(now: number, capacity: number | undefined, rungBitrate: (rung: number) => number): number {
    if (this.options.enabled === false || this.options.rungs <= 1 || capacity === undefined) return this.current;
    const best = (limit: number) => {
      for (let r = 0; r < this.options.rungs; r++) if (rungBitrate(r) <= limit) return r;
      return this.options.rungs - 1;
    };
    if (rungBitrate(this.current) > capacity * this.downAbove) {
      this.current = Math.min(this.options.rungs - 1, Math.max(this.current + 1, best(capacity)));
      this.upCandidateSince = undefined;
      return this.current;
    }
    const better = best(capacity * this.upBelow);
    if (better >= this.current) {
      this.upCandidateSince = undefined;
      return this.current;
    }
    this.upCandidateSince ??= now;
    if (now - this.upCandidateSince >= this.upHoldMs) {
      this.current = better;
      this.upCandidateSince = undefined;
    }
    return this.current;
  }
}
