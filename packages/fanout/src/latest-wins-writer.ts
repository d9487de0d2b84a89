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
  /** A frame that will never be sent: a newer one replaced it, or the writer closed. */
  dropped?(frame: F): void;
  /** Clock for blockedForMs (default performance.now). */
  now?(): number;
}

/**
 * The one outbound path for live frames (TCP receivers, browser WebSockets, MJPEG, SSE): a frame
 * goes out at once when the destination keeps up and the window admits it; otherwise it waits in
 * a single slot, where a newer frame replaces it (a drop, reported), so that what waits is always
 * the newest frame and memory is bounded by one frame in flight plus one waiting.
 */
export class LatestWinsWriter<F> {
  private slot: F | undefined;
  /** When the destination last refused more bytes; undefined while it keeps up. */
  private blockedSince: number | undefined;
  private closed = false;
  private readonly now: () => number;

  constructor(private readonly options: LatestWinsWriterOptions<F>) {
    this.now = options.now ?? (() => performance.now());
  }

  /** The frame waiting for the destination or the window, if any. */
  get waiting(): F | undefined {
    return this.slot;
  }

  /** True while the destination has not drained since it last refused bytes. */
  get blocked(): boolean {
    return this.blockedSince !== undefined;
  }

  /** Sends `frame` now if it can, else puts it in the slot (dropping what waited there). */
  offer(frame: F): void {
    if (this.closed) {
      this.options.dropped?.(frame);
      return;
    }
    const replaced = this.slot;
    this.slot = frame;
    if (replaced !== undefined) this.options.dropped?.(replaced);
    this.flush();
  }

  /** The destination took its buffered bytes ('drain'): send the waiting frame if the window allows. */
  drained(): void {
    this.blockedSince = undefined;
    this.flush();
  }

  /** The window may have opened (an acknowledgement arrived): send the waiting frame if it can. */
  retry(): void {
    this.flush();
  }

  /** How long the destination has refused more bytes (0 while it keeps up): a stalled or dead peer. */
  blockedForMs(now = this.now()): number {
    return this.blockedSince === undefined ? 0 : now - this.blockedSince;
  }

  /** No more frames: the waiting one is dropped, later offers too. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const waiting = this.slot;
    this.slot = undefined;
    if (waiting !== undefined) this.options.dropped?.(waiting);
  }

  private flush(): void {
    const frame = this.slot;
    if (frame === undefined || this.closed || this.blockedSince !== undefined) return;
    if (this.options.admits && !this.options.admits(frame)) return;
    this.slot = undefined;
    this.options.taken?.(frame);
    if (!this.options.send(frame)) this.blockedSince = this.now();
  }
}
