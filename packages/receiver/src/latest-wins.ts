/**
 * Runs an async job on the newest item only: while a job runs, a newer item replaces the one
 * waiting, and the replaced item is counted as skipped. Latency never grows behind a slow job.
 */
export class LatestWins<T> {
  private running = false;
  private waiting: T | undefined;
  private idleWaiters: Array<() => void> = [];
  skipped = 0;

  constructor(
    private readonly job: (item: T) => Promise<void>,
    private readonly onError: (err: unknown) => void,
  ) {}

  offer(item: T): void {
    if (this.running) {
      if (this.waiting !== undefined) this.skipped++;
      this.waiting = item;
      return;
    }
    void this.runFrom(item);
  }

  /** Resolves when nothing runs and nothing waits. */
  idle(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async runFrom(first: T): Promise<void> {
    this.running = true;
    let item: T | undefined = first;
    while (item !== undefined) {
      try {
        await this.job(item);
      } catch (err) {
        this.onError(err);
      }
      item = this.waiting;
      this.waiting = undefined;
    }
    this.running = false;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}
