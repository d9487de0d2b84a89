/** Nearest-rank percentile of an unsorted sample (sorts a copy). */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

/** A bounded window of recent samples: memory stays fixed however long the stream runs. */
export class SampleWindow {
  private readonly samples: number[] = [];
  private next = 0;

  constructor(private readonly capacity: number) {}

  add(value: number): void {
    if (this.samples.length < this.capacity) this.samples.push(value);
    else this.samples[this.next] = value;
    this.next = (this.next + 1) % this.capacity;
  }

  get values(): readonly number[] {
    return this.samples;
  }

  clear(): void {
    this.samples.length = 0;
    this.next = 0;
  }
}
