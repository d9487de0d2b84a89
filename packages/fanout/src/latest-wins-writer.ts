import { follows, type ChainLink } from './chain';

export interface LatestWinsWriterOptions<F> {
  /**
   * Writes one frame to the destination; returns false when the destination now buffers more than
   * it wants (a socket's write() returning false): no more frames until `drained()` is called.
   */
  send(frame: F): boolean;
  /** Whether the frame may go now, beyond the destination's own buffering: a flow-control window. Default: always. */
  admits?(frame: F): boolean;
  /** A frame handed to `send`. */
  taken?(frame: F): void;
  /** A frame that will never be sent: a newer one replaced it, it cannot be decoded, or the writer closed. */
  dropped?(frame: F): void;
  /** A frame that never came to this writer (see missed()), reported in its place among the others. */
  missed?(): void;
  /**
   * Inter-coded frames: where a frame stands in its rung's chain (see ChainLink). Frames without a
   * link stand alone. Default: every frame stands alone.
   */
  chainOf?(frame: F): ChainLink | undefined;
  /**
   * A chained frame that follows one still waiting is queued behind it rather than replacing it;
   * once the oldest waiting frame has waited longer than this, the destination has fallen behind:
   * everything waiting is dropped, and so is every later frame up to the next keyframe (default 250 ms).
   */
  maxChainWaitMs?: number;
  /** Clock for blockedForMs and chain waits (default performance.now). */
  now?(): number;
}

type Entry<F> =
  /** A frame to send. */
  | { kind: 'frame'; frame: F; since: number }
  /** A frame dropped behind frames still waiting: reported once those went (drops are declared in order). */
  | { kind: 'dropped'; frame: F }
  /** A frame that never came, reported likewise in order. */
  | { kind: 'missed' };

const DEFAULT_MAX_CHAIN_WAIT_MS = 250;

/**
 * The one outbound path for live frames (TCP receivers, browser WebSockets, MJPEG, SSE): a frame
 * goes out at once when the destination keeps up and the window admits it; otherwise it waits in
 * a single slot, where a newer frame replaces it (a drop, reported), so that what waits is always
 * the newest frame and memory is bounded by one frame in flight plus one waiting.
 *
 * Inter-coded frames (`chainOf`) cannot replace each other: a frame is useless without the one
 * before it. So the writer never sends a frame whose predecessor it did not take: such a frame is
 * dropped, and so is every later one up to a keyframe. A frame that follows one still waiting
 * queues behind it for at most `maxChainWaitMs`; past that the queue is dropped and the writer
 * waits for a keyframe. A keyframe, or a frame that stands alone, replaces everything waiting.
 * Drops and misses are reported in stream order: one behind frames still waiting is reported
 * after they went, so a count carried by each sent frame covers exactly the frames before it.
 */
export class LatestWinsWriter<F> {
  private readonly queue: Array<Entry<F>> = [];
  /** The last chained frame taken (sent or waiting): a non-keyframe must follow it. */
  private last: ChainLink | undefined;
  /** When the destination last refused more bytes; undefined while it keeps up. */
  private blockedSince: number | undefined;
  private closed = false;
  private readonly now: () => number;
  private readonly maxChainWaitMs: number;

  constructor(private readonly options: LatestWinsWriterOptions<F>) {
    this.now = options.now ?? (() => performance.now());
    this.maxChainWaitMs = options.maxChainWaitMs ?? DEFAULT_MAX_CHAIN_WAIT_MS;
  }

  /** The (oldest) frame waiting for the destination or the window, if any. */
  get waiting(): F | undefined {
    for (const entry of this.queue) if (entry.kind === 'frame') return entry.frame;
    return undefined;
  }

  /** Frames waiting to be sent. */
  get waitingCount(): number {
    return this.queue.filter((entry) => entry.kind === 'frame').length;
  }

  /** The last chained frame taken; undefined when the next chained frame must be a keyframe. */
  get chainPosition(): ChainLink | undefined {
    return this.last;
  }

  /** True while the destination has not drained since it last refused bytes. */
  get blocked(): boolean {
    return this.blockedSince !== undefined;
  }

  /** Sends `frame` now if it can, else keeps it waiting (see the class comment for what it replaces). */
  offer(frame: F): void {
    if (this.closed) {
      this.options.dropped?.(frame);
      return;
    }
    const link = this.options.chainOf?.(frame);
    if (link === undefined || link.keyframe) {
      // It stands alone: whatever waits is older, and nothing after it will need it.
      this.dropWaiting();
      this.queue.push({ kind: 'frame', frame, since: this.now() });
      this.last = link;
    } else if (!follows(link, this.last)) {
      // Its predecessor never came here: it cannot be decoded, nor can anything up to a keyframe.
      this.last = undefined;
      this.report({ kind: 'dropped', frame });
    } else if (this.fellBehind()) {
      this.dropWaiting();
      this.last = undefined;
      this.options.dropped?.(frame);
    } else {
      this.queue.push({ kind: 'frame', frame, since: this.now() });
      this.last = link;
    }
    this.flush();
  }

  /** A frame that never came to this writer (its encoder made none): reported in order, the chain goes on. */
  missed(): void {
    this.report({ kind: 'missed' });
    this.flush();
  }

  /** The destination took its buffered bytes ('drain'): send what waits if the window allows. */
  drained(): void {
    this.blockedSince = undefined;
    this.flush();
  }

  /** The window may have opened (an acknowledgement arrived): send what waits if it can. */
  retry(): void {
    this.flush();
  }

  /** How long the destination has refused more bytes (0 while it keeps up): a stalled or dead peer. */
  blockedForMs(now = this.now()): number {
    return this.blockedSince === undefined ? 0 : now - this.blockedSince;
  }

  /** No more frames: what waits is dropped, later offers too. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.dropWaiting();
  }

  private fellBehind(): boolean {
    const oldest = this.queue.find((entry) => entry.kind === 'frame');
    return oldest !== undefined && this.now() - oldest.since > this.maxChainWaitMs;
  }

  /** Reports a drop or a miss now, or after the frames still waiting, which come before it. */
  private report(entry: Exclude<Entry<F>, { kind: 'frame' }>): void {
    if (this.queue.length > 0) this.queue.push(entry);
    else this.settle(entry);
  }

  /** Drops every waiting frame, reporting it and any pending report in order. */
  private dropWaiting(): void {
    for (const entry of this.queue.splice(0)) {
      if (entry.kind === 'frame') this.options.dropped?.(entry.frame);
      else this.settle(entry);
    }
  }

  private settle(entry: Exclude<Entry<F>, { kind: 'frame' }>): void {
    if (entry.kind === 'dropped') this.options.dropped?.(entry.frame);
    else this.options.missed?.();
  }

  private flush(): void {
    while (this.queue.length > 0 && !this.closed) {
      const head = this.queue[0]!;
      if (head.kind !== 'frame') {
        // Nothing before it waits any more: report it now.
        this.queue.shift();
        this.settle(head);
        continue;
      }
      if (this.blockedSince !== undefined) return;
      if (this.options.admits && !this.options.admits(head.frame)) return;
      this.queue.shift();
      this.options.taken?.(head.frame);
      if (!this.options.send(head.frame)) this.blockedSince = this.now();
    }
  }
}
