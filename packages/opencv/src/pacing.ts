import { setTimeout as sleep } from 'node:timers/promises';

/** Wall-clock time in ms since the Unix epoch, with the sub-millisecond fraction Date.now() lacks. */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * Spaces reads `1000 / fps` ms apart on a fixed schedule (frame n is due at start + n * interval),
 * so timer jitter does not accumulate into drift. A consumer that falls more than one interval
 * behind gets the next frame at once and the schedule restarts from there, rather than a burst
 * of catch-up frames. fps 0 means no pacing.
 */
export class FramePacer {
  private readonly intervalMs: number;
  private nextDueMs: number | undefined;

  constructor(fps: number) {
    this.intervalMs = fps > 0 ? 1000 / fps : 0;
  }

  /** Resolves when the next frame is due. */
  async wait(): Promise<void> {
    if (this.intervalMs === 0) return;
    const now = performance.now();
    if (this.nextDueMs === undefined || now - this.nextDueMs > this.intervalMs) {
      this.nextDueMs = now;
    } else if (this.nextDueMs > now) {
      await sleep(this.nextDueMs - now);
    }
    this.nextDueMs += this.intervalMs;
  }

  /** Starts the schedule afresh (e.g. after a file rewinds). */
  reset(): void {
    this.nextDueMs = undefined;
  }
}
