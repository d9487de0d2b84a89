/** A histogram's counts as the text format wants them: cumulative per upper bound. */
export interface HistogramSnapshot {
  /** Observations at or below each bound, bounds ascending (the +Inf bucket is `count`). */
  readonly buckets: ReadonlyArray<{ readonly le: number; readonly count: number }>;
  readonly sum: number;
  readonly count: number;
}

/**
 * Counts observations into fixed buckets: constant memory however long it runs, and cheap
 * enough to observe every frame (a short loop over a dozen bounds).
 */
export class Histogram {
  private readonly counts: number[];
  private total = 0;
  private sum = 0;

  constructor(readonly bounds: readonly number[]) {
    if (bounds.length === 0) throw new RangeError('a histogram needs at least one bucket bound');
    for (let i = 0; i < bounds.length; i++) {
      const bound = bounds[i]!;
      if (!Number.isFinite(bound)) throw new RangeError(`bucket bounds must be finite numbers, got ${bound}`);
      if (i > 0 && bound <= bounds[i - 1]!) throw new RangeError(`bucket bounds must increase: ${bounds[i - 1]} then ${bound}`);
    }
    this.counts = bounds.map(() => 0);
  }

  observe(value: number): void {
    if (Number.isNaN(value)) return;
    this.total++;
    this.sum += value;
    // Per bucket, not cumulative: snapshot() adds them up.
    for (let i = 0; i < this.bounds.length; i++) {
      if (value <= this.bounds[i]!) {
        this.counts[i]!++;
        break;
      }
    }
  }

  get count(): number {
    return this.total;
  }

  snapshot(): HistogramSnapshot {
    let cumulative = 0;
    const buckets = this.bounds.map((le, i) => {
      cumulative += this.counts[i]!;
      return { le, count: cumulative };
    });
    return { buckets, sum: this.sum, count: this.total };
  }
}
