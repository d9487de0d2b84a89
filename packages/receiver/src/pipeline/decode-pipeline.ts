export interface PipelineStages<T, D> {
  /** Runs up to `concurrency` at once (on worker threads, so they really overlap). */
  decode(item: T): Promise<D>;
  /** Called for each decoded item as it is handed on, in arrival order (a busy sink may still skip it). */
  accepted?(item: T): void;
  /** Called for each item that will never be shown (a newer one took its place). */
  skipped?(item: T): void;
  /** Called for each skipped item that was never decoded, after skipped(): what it holds can go. */
  discarded?(item: T): void;
  /** Runs one at a time, in arrival order. */
  show(decoded: D, item: T): Promise<void>;
  /** Called once for every decoded item when it was shown or skipped: nothing here uses it any more. */
  release?(decoded: D, item: T): void;
  /** A failed decode drops its item; a failed show is reported and the next item is shown. */
  onError(err: unknown, stage: 'decode' | 'show'): void;
}

interface Ticket<T, D> {
  readonly item: T;
  /** Set when the decode settled: the image, or undefined if it failed. */
  result?: { decoded: D | undefined };
}

/**
 * Decode-then-show with latest-wins, so latency never grows behind a slow step and memory stays
 * bounded (`concurrency` decoding, as many waiting to decode, one showing, one waiting to show):
 * - offer() starts a decode when a slot is free; otherwise the item waits, one per decoder, so
 *   a burst of frames from one socket read is not thinned out; when all wait places are taken,
 *   the oldest waiting item gives way;
 * - decodes finish in any order but are handed on in arrival order: a decode that finishes
 *   early waits for the older ones still running, so frames never go backwards;
 * - while one item is being shown, a newer decoded item replaces the one waiting to be shown.
 * Every item that is offered but never shown is counted in `skipped` (failed decodes are not).
 */
export class DecodePipeline<T, D> {
  /** Decodes started and not yet handed on, oldest first. */
  private readonly inFlight: Array<Ticket<T, D>> = [];
  private readonly waiting: Array<Ticket<T, D>> = [];
  private showing = false;
  private waitingToShow: { ticket: Ticket<T, D>; decoded: D } | undefined;
  private idleWaiters: Array<() => void> = [];
  skipped = 0;

  constructor(
    private readonly stages: PipelineStages<T, D>,
    private readonly concurrency: number,
  ) {
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`decode concurrency must be a positive integer, got ${concurrency}`);
  }

  offer(item: T): void {
    const ticket: Ticket<T, D> = { item };
    if (this.inFlight.length < this.concurrency) return this.startDecode(ticket);
    if (this.waiting.length >= this.concurrency) {
      const oldest = this.waiting.shift()!;
      this.skip(oldest);
      this.stages.discarded?.(oldest.item);
    }
    this.waiting.push(ticket);
  }

  /** Resolves when nothing decodes, shows or waits. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    return this.inFlight.length === 0 && !this.showing && this.waiting.length === 0;
  }

  private startDecode(ticket: Ticket<T, D>): void {
    this.inFlight.push(ticket);
    this.stages.decode(ticket.item).then(
      (decoded) => this.settled(ticket, decoded),
      (err: unknown) => {
        this.stages.onError(err, 'decode');
        this.settled(ticket, undefined);
      },
    );
  }

  private settled(ticket: Ticket<T, D>, decoded: D | undefined): void {
    ticket.result = { decoded };
    while (this.inFlight[0]?.result) {
      const done = this.inFlight.shift()!;
      if (done.result!.decoded !== undefined) this.decoded(done, done.result!.decoded);
    }
    while (this.waiting.length > 0 && this.inFlight.length < this.concurrency) this.startDecode(this.waiting.shift()!);
    this.settleIfIdle();
  }

  private decoded(ticket: Ticket<T, D>, decoded: D): void {
    this.stages.accepted?.(ticket.item);
    if (this.showing) {
      const replaced = this.waitingToShow;
      if (replaced !== undefined) {
        this.skip(replaced.ticket);
        this.stages.release?.(replaced.decoded, replaced.ticket.item);
      }
      this.waitingToShow = { ticket, decoded };
      return;
    }
    void this.showFrom({ ticket, decoded });
  }

  private async showFrom(first: { ticket: Ticket<T, D>; decoded: D }): Promise<void> {
    this.showing = true;
    let next: typeof first | undefined = first;
    while (next !== undefined) {
      try {
        await this.stages.show(next.decoded, next.ticket.item);
      } catch (err) {
        this.stages.onError(err, 'show');
      }
      this.stages.release?.(next.decoded, next.ticket.item);
      next = this.waitingToShow;
      this.waitingToShow = undefined;
    }
    this.showing = false;
    this.settleIfIdle();
  }

  private skip(ticket: Ticket<T, D>): void {
    this.skipped++;
    this.stages.skipped?.(ticket.item);
  }

  private settleIfIdle(): void {
    if (!this.isIdle()) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}
