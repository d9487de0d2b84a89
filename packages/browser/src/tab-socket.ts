import { AdaptiveOutlet, type Delivery, type Outlet } from '@camstream/fanout';
import { FlowWindow, type FlowWindowOptions } from '@camstream/protocol';
import type { RawData, WebSocket } from 'ws';
import type { ClientInfo, OutboundStream, ServedFrame } from './outbound';
import { parseTabAck, tabFrameBytes, tabFrameMessages } from './tab-frames';

/** Close codes the server uses (RFC 6455 section 7.4). */
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_UNSUPPORTED_DATA = 1003;
export const CLOSE_POLICY_VIOLATION = 1008;
/** The stream restarted (its frame numbers began again): the page reconnects at once. */
export const CLOSE_STREAM_RESTARTED = 1012;

export interface TabSocketOptions {
  /** Rungs on the current ladder (1: adaptation has nothing to choose from). */
  rungs: number;
  /** Off: always rung 0, only the window's drops keep latency bounded. */
  adapt: boolean;
  flow?: FlowWindowOptions;
  log(line: string): void;
  now?(): number;
}

/**
 * One browser tab on the WebSocket: the same flow control a TCP receiver gets from the sender
 * (PROTOCOL.md 4.3). Frames go out through a latest-wins writer whose window is a FlowWindow fed
 * by the tab's acks; the tab acknowledges a frame once it has drawn it, with how long the frame
 * took to arrive, so the window (and the rung, chosen from the measured capacity) follow the
 * real link to the tab. Frames the writer skips are counted and declared in every frame header.
 */
export class TabSocket implements Outlet<ServedFrame>, OutboundStream {
  readonly kind = 'tab';
  private readonly window: FlowWindow;
  private readonly outlet: AdaptiveOutlet<ServedFrame>;
  private readonly now: () => number;
  private acks = 0;
  private lastRung = 0;
  /** The newest frame offered: an older one may still come (see offer). */
  private newestSeq: number | undefined;

  constructor(
    private readonly socket: WebSocket,
    readonly id: string | undefined,
    readonly remote: string,
    private readonly options: TabSocketOptions,
  ) {
    this.now = options.now ?? (() => performance.now());
    this.window = new FlowWindow(options.flow);
    this.outlet = new AdaptiveOutlet<ServedFrame>({
      gate: this.window,
      bytesOf: (frame) => tabFrameBytes(frame.payload.length),
      send: (frame) => this.sendFrame(frame),
      adaptation: { rungs: options.rungs, enabled: options.adapt },
      now: this.now,
    });
    socket.on('message', (data, isBinary) => this.received(data, isBinary));
    socket.on('close', () => this.outlet.close());
    socket.on('error', () => undefined); // 'close' follows
  }

  /** The ladder changed (a new stream size): start again from rung 0. */
  setRungs(rungs: number): void {
    this.outlet.reset({ rungs, enabled: this.options.adapt });
  }

  chooseRung(now: number, rungBitrate: (rung: number) => number): number {
    return this.outlet.chooseRung(now, rungBitrate);
  }

  /**
   * A frame older than one already offered is passed over, not counted as dropped: the tab has
   * a newer one (a tab that joins gets the newest received frame, ahead of those being decoded).
   */
  offer(delivery: Delivery<ServedFrame>): void {
    if (this.newestSeq !== undefined && delivery.frame.seq <= this.newestSeq) return delivery.settle(false);
    this.newestSeq = delivery.frame.seq;
    this.outlet.offer(delivery);
  }

  info(): ClientInfo {
    return {
      kind: this.kind,
      id: this.id,
      remote: this.remote,
      sent: this.outlet.sent,
      dropped: this.outlet.dropped,
      bufferedBytes: this.socket.bufferedAmount,
      blocked: this.outlet.blocked,
      tab: {
        rung: this.lastRung,
        acks: this.acks,
        inFlightBytes: this.window.inFlightBytes,
        windowBytes: this.window.windowBytes,
        capacityBytesPerSecond: this.window.capacityBytesPerSecond,
      },
    };
  }

  /** A tab that neither takes bytes nor acknowledges what it got is stalled either way. */
  stalledForMs(now: number): number {
    return this.outlet.stalledForMs(now);
  }

  /** A stalled tab would not read a closing handshake either: drop the connection. */
  cut(): void {
    this.outlet.close();
    this.socket.terminate();
  }

  close(code: number, reason: string): void {
    this.outlet.close();
    // Close reasons are limited to 123 bytes.
    this.socket.close(code, Buffer.from(reason).subarray(0, 123).toString());
  }

  end(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.readyState === this.socket.CLOSED) return resolve();
      this.socket.once('close', () => resolve());
      this.close(CLOSE_GOING_AWAY, 'the server is shutting down');
    });
  }

  /** Cuts the TCP connection at once (after close() had its grace time). */
  terminate(): void {
    this.socket.terminate();
  }

  private sendFrame(frame: ServedFrame): boolean {
    if (this.socket.readyState !== this.socket.OPEN) return true;
    const messages = tabFrameMessages(
      { seq: frame.seq, captureTime: frame.captureTime, width: frame.width, height: frame.height, rung: frame.rung, dropped: this.outlet.dropped, payloadBytes: frame.payload.length },
      frame.payload,
    );
    this.window.sent(frame.seq, tabFrameBytes(frame.payload.length), this.now());
    this.lastRung = frame.rung;
    const last = messages.length - 1;
    messages.forEach((message, i) => this.socket.send(message, { binary: true }, i === last ? this.afterFrameWritten : undefined));
    // Anything left in Node's buffer means the kernel's is full: wait until it has all gone.
    return this.socket.bufferedAmount === 0;
  }

  /** A frame's last message went to the kernel: once nothing more waits in Node, the socket has drained. */
  private readonly afterFrameWritten = (err?: Error): void => {
    if (!err && this.outlet.blocked && this.socket.bufferedAmount === 0) this.outlet.drained();
  };

  private received(data: RawData, isBinary: boolean): void {
    if (isBinary) {
      this.close(CLOSE_UNSUPPORTED_DATA, 'binary message from the page: it sends only text acks');
      return;
    }
    try {
      const ack = parseTabAck(textOf(data));
      this.window.acked(ack, this.now());
      this.acks++;
    } catch (err) {
      const message = (err as Error).message;
      this.options.log(`browser server: tab ${this.remote} sent a bad message (${message}): closing it`);
      this.close(CLOSE_POLICY_VIOLATION, message);
      return;
    }
    this.outlet.acked();
  }
}

function textOf(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(data).toString('utf8');
}
