import type { Socket } from 'node:net';
import { AdaptiveOutlet, type Delivery, type Outlet, type RungSpec } from '@camstream/fanout';
import type { SenderSession } from '@camstream/protocol';
import { formatMbps } from './format';
import type { OutgoingFrame } from './outgoing-frame';

export interface TcpViewerOptions {
  /** The ladder the stream announced: rung 0 first. */
  ladder: readonly RungSpec[];
  /** Off: always rung 0 (only the window's drops keep latency bounded). */
  adapt: boolean;
  /** The ladder's rungs are inter-coded (H.264): see AdaptationOptions.interCoded (default false). */
  interCoded?: boolean;
  /** Rung changes are logged at most this often per viewer (default 2 s); the last one always is. */
  rungLogIntervalMs?: number;
  /** H.264: how long a frame may wait behind the one before it before the viewer skips to the next keyframe (default 250 ms). */
  maxChainWaitMs?: number;
  log?: (line: string) => void;
  now?: () => number;
}

/**
 * One receiver after its handshake, as an outlet of the broadcast: frames go out through an
 * AdaptiveOutlet whose window is the session's flow-control window, so a frame is written only
 * when the bytes in flight leave room for it; otherwise it waits in the one-frame slot, where a
 * newer frame replaces it (a drop, declared in the next header). Its rung follows the link the
 * session measures from the receiver's acks.
 *
 * The stream server feeds it: acked() for every acknowledgement, and close() when the session ends.
 */
export class TcpViewer implements Outlet<OutgoingFrame> {
  private readonly outlet: AdaptiveOutlet<OutgoingFrame>;
  private readonly now: () => number;
  private bytes = 0;
  /** When the socket last refused more bytes (write() returned false); undefined while it keeps up. */
  private blockedSince: number | undefined;
  private lastRung = 0;
  private loggedRung = 0;
  private lastRungLogAt = -Infinity;
  private closed = false;

  constructor(
    readonly id: number,
    readonly name: string,
    /** The receiver's address and port, as taken when its connection was accepted. */
    readonly remote: string,
    private readonly socket: Socket,
    private readonly session: SenderSession,
    private readonly options: TcpViewerOptions,
  ) {
    this.now = options.now ?? (() => performance.now());
    this.outlet = new AdaptiveOutlet<OutgoingFrame>({
      gate: session.window,
      bytesOf: (frame) => frame.bytesFor(session.dropped),
      send: (frame) => this.send(frame),
      dropped: (frame) => {
        // A frame left in the slot when the viewer goes is no drop to declare: nothing follows it.
        if (!this.closed) session.frameDropped();
        frame.release();
      },
      // A frame its rung's encoder never made: missing for this receiver all the same, so declared.
      missed: () => {
        if (!this.closed) session.frameDropped();
      },
      ...(options.maxChainWaitMs === undefined ? {} : { maxChainWaitMs: options.maxChainWaitMs }),
      adaptation: { rungs: options.ladder.length, enabled: options.adapt, interCoded: options.interCoded ?? false },
      now: this.now,
    });
    socket.on('drain', () => {
      this.blockedSince = undefined;
      this.outlet.drained();
    });
  }

  /** Frames written to this receiver. */
  get sent(): number {
    return this.session.sent;
  }

  /** Frames skipped for this receiver (declared in its frame headers). */
  get dropped(): number {
    return this.session.dropped;
  }

  /** Bytes of frame messages written to it. */
  get bytesSent(): number {
    return this.bytes;
  }

  /** The rung of the frame it got last. */
  get rung(): number {
    return this.lastRung;
  }

  /** Bytes written but not yet taken by the kernel: at most the frame being written. */
  get queuedBytes(): number {
    return this.socket.writableLength;
  }

  get inFlightBytes(): number {
    return this.session.window.inFlightBytes;
  }

  get inFlightFrames(): number {
    return this.session.window.inFlightFrames;
  }

  get windowBytes(): number {
    return this.session.window.windowBytes;
  }

  /** The link's capacity measured from acks, bytes per second (undefined before the first ack). */
  get capacityBytesPerSecond(): number | undefined {
    return this.session.window.capacityBytesPerSecond;
  }

  /** "rung 3 (960x540 q60)". */
  describeRung(rung = this.lastRung): string {
    const spec = this.options.ladder[rung];
    if (!spec) return `rung ${rung}`;
    const detail = spec.bitrate !== undefined ? ` ${formatMbps(spec.bitrate / 8)}` : spec.quality === undefined ? '' : ` q${spec.quality}`;
    return `rung ${rung} (${spec.width}x${spec.height}${detail})`;
  }

  chooseRung(now: number, rungBitrate: (rung: number) => number): number {
    return this.outlet.chooseRung(now, rungBitrate);
  }

  offer(delivery: Delivery<OutgoingFrame>): void {
    delivery.frame.retain();
    this.outlet.offer(delivery);
  }

  /** H.264: the rung it can go on with without a keyframe (undefined: it needs one). */
  continuingRung(): number | undefined {
    return this.outlet.continuingRung();
  }

  /** H.264: no frame of this seq will come to it (its rung's encoder made none): declared like a drop. */
  missed(): void {
    this.outlet.missed();
  }

  /** An acknowledgement arrived: the window may have room for the waiting frame. */
  acked(): void {
    this.outlet.acked();
  }

  /** How long its socket has refused more bytes (0 while it takes them). */
  socketBlockedForMs(now = this.now()): number {
    return this.blockedSince === undefined ? 0 : now - this.blockedSince;
  }

  /** No more frames: the waiting one is let go. */
  close(): void {
    this.closed = true;
    this.outlet.close();
  }

  /** Logs a rung change held back by the rate limit, once the interval is over. */
  flushRungLog(now = this.now()): void {
    if (this.lastRung !== this.loggedRung && now - this.lastRungLogAt >= (this.options.rungLogIntervalMs ?? 2000)) this.logRung(now);
  }

  private send(frame: OutgoingFrame): boolean {
    const socket = this.socket;
    if (!this.session.streaming || socket.destroyed || socket.writableEnded) {
      frame.release();
      return true;
    }
    const now = this.now();
    const bytes = frame.bytesFor(this.session.dropped);
    const head = frame.prepared.headFor(this.session.frameSent(frame.seq, bytes, now));
    // Two writes inside cork(): one system call, and the shared payload is never copied.
    socket.cork();
    socket.write(head);
    // Called once the bytes left Node (or the socket failed): only then may the payload be reused.
    const ok = socket.write(frame.prepared.payload, () => frame.release());
    socket.uncork();
    this.bytes += bytes;
    if (!ok) this.blockedSince ??= now;
    if (frame.rung !== this.lastRung) {
      this.lastRung = frame.rung;
      this.flushRungLog(now);
    }
    return ok;
  }

  private logRung(now: number): void {
    this.lastRungLogAt = now;
    this.loggedRung = this.lastRung;
    const capacity = this.capacityBytesPerSecond;
    const link = capacity === undefined ? 'link not measured yet' : `link ${formatMbps(capacity)}`;
    this.options.log?.(`viewer #${this.id} (${this.name}) now on ${this.describeRung()}: ${link}, ${this.dropped} frames dropped so far`);
  }
}
