export interface RefusalLogOptions {
  /** Lines logged one by one before the rest are only counted (default 20). */
  burst?: number;
  /** How fast that allowance comes back, in lines per second (default 1). */
  perSecond?: number;
  /** How long refusals are counted before one line sums them up (default 5 s). */
  summaryMs?: number;
  /** Milliseconds, for tests; default performance.now. */
  now?: () => number;
}

/**
 * The sender's lines about connections it refused or closed before they became viewers. Anyone
 * who can reach the port chooses how many there are: an attacker that reconnects each time it is
 * refused made 34,392 lines in 25 s. So the first few are logged as they come (a token bucket:
 * `burst` lines, refilled at `perSecond`); beyond that they are counted by reason, and one line
 * per `summaryMs` says how many there were and why.
 */
export class RefusalLog {
  private readonly burst: number;
  private readonly perSecond: number;
  private readonly summaryMs: number;
  private readonly now: () => number;
  private tokens: number;
  private refilledAt: number;
  /** Refusals not logged one by one since the last summary, by reason. */
  private readonly unlogged = new Map<string, number>();
  private unloggedSince = 0;
  private summaryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly log: (line: string) => void,
    options: RefusalLogOptions = {},
  ) {
    this.burst = options.burst ?? 20;
    this.perSecond = options.perSecond ?? 1;
    this.summaryMs = options.summaryMs ?? 5000;
    this.now = options.now ?? (() => performance.now());
    this.tokens = this.burst;
    this.refilledAt = this.now();
  }

  /** `line` is logged now if the allowance permits, else counted under `reason` (e.g. an error code). */
  refused(line: string, reason: string): void {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.refilledAt) / 1000) * this.perSecond);
    this.refilledAt = now;
    if (this.tokens >= 1) {
      this.tokens--;
      this.log(line);
      return;
    }
    if (this.unlogged.size === 0) {
      this.unloggedSince = now;
      this.summaryTimer = setTimeout(() => this.flush(), this.summaryMs);
      this.summaryTimer.unref();
    }
    this.unlogged.set(reason, (this.unlogged.get(reason) ?? 0) + 1);
  }

  /** Logs the summary of what was counted, if anything was; the sender calls it when closing. */
  flush(): void {
    clearTimeout(this.summaryTimer);
    this.summaryTimer = undefined;
    if (this.unlogged.size === 0) return;
    const counts = [...this.unlogged].sort(([, a], [, b]) => b - a);
    const total = counts.reduce((sum, [, n]) => sum + n, 0);
    const seconds = ((this.now() - this.unloggedSince) / 1000).toFixed(1);
    const reasons = counts.map(([reason, n]) => `${n} ${reason}`).join(', ');
    this.unlogged.clear();
    this.log(`${total} more refused or closed connection${total === 1 ? '' : 's'} in the last ${seconds} s, too many to log one by one: ${reasons}`);
  }
}
