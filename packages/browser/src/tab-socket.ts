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

/** The ladder a tab chooses from. */
export interface TabLadder {
  /** Rungs on the ladder (1: adaptation has nothing to choose from). */
  rungs: number;
  /**
   * An H.264 stream: rung 0 is the stream's own H.264, forwarded by the server's H.264 fan-out
   * (the tab takes it through `h264Outlet`); rung r > 0 is rung r - 1 of the JPEG fan-out.
   */
  h264?: boolean;
  /** Each rung's expected bitrate (bytes/s) on this ladder; default: the JPEG fan-out's figures. */
  rungBitrate?: (rung: number) => number;
}

export interface TabSocketOptions extends TabLadder {
  /** The page decodes H.264 (WebCodecs): without it, a tab of an H.264 stream gets only JPEG rungs. */
  acceptsH264?: boolean;
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
 *
 * On an H.264 stream a tab whose page decodes H.264 (WebCodecs) has the H.264 itself as rung 0
 * and the JPEG rungs below it: the server's H.264 fan-out offers it access units through
 * `h264Outlet` (from a keyframe on, skipping to the next keyframe after a drop), its JPEG fan-out
 * the rest. Moving up from JPEG to H.264 happens at a keyframe: until one comes the tab keeps its
 * JPEG rung. A page without H.264 gets the JPEG rungs only.
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
  private ladder: TabLadder;
  /** The JPEG fan-out rung of the last JPEG frame offered to it: kept while it waits for an H.264 keyframe. */
  private lastJpegRung: number | undefined;
  readonly acceptsH264: boolean;
  /** The tab as an outlet of the server's H.264 fan-out (an H.264 stream's rung 0). */
  readonly h264Outlet: Outlet<ServedFrame>;

  constructor(
    private readonly socket: WebSocket,
    readonly id: string | undefined,
    readonly remote: string,
    private readonly options: TabSocketOptions,
  ) {
    this.now = options.now ?? (() => performance.now());
    this.acceptsH264 = options.acceptsH264 ?? false;
    this.ladder = { rungs: options.rungs, ...(options.h264 ? { h264: true } : {}), ...(options.rungBitrate ? { rungBitrate: options.rungBitrate } : {}) };
    this.window = new FlowWindow(options.flow);
    this.outlet = new AdaptiveOutlet<ServedFrame>({
      gate: this.window,
      bytesOf: (frame) => tabFrameBytes(frame.payload.length),
      send: (frame) => this.sendFrame(frame),
      adaptation: this.adaptation(),
      now: this.now,
    });
    this.h264Outlet = {
      chooseRung: (now, rungBitrate) => (this.ladder.h264 && this.chooseOnLadder(now, rungBitrate) === 0 ? 0 : -1),
      offer: (delivery) => this.offer(delivery),
      continuingRung: () => this.outlet.continuingRung(),
      missed: () => this.outlet.missed(),
    };
    socket.on('message', (data, isBinary) => this.received(data, isBinary));
    socket.on('close', () => this.outlet.close());
    socket.on('error', () => undefined); // 'close' follows
  }

  /** The ladder changed (a new stream, size or codec): start again from the best rung it can take. */
  setLadder(ladder: TabLadder): void {
    this.ladder = ladder;
    this.lastJpegRung = undefined;
    this.outlet.reset(this.adaptation());
  }

  /** The tab as an outlet of the JPEG fan-out: the JPEG rung it needs for this frame, or -1 for none. */
  chooseRung(now: number, rungBitrate: (rung: number) => number): number {
    const rung = this.chooseOnLadder(now, rungBitrate);
    if (!this.ladder.h264) return rung;
    if (rung > 0) return rung - 1;
    // Rung 0 is the H.264, from the other fan-out: until its keyframe comes, the JPEG rung it is on.
    return this.outlet.continuingRung() === undefined && this.lastJpegRung !== undefined ? this.lastJpegRung : -1;
  }

  /**
   * A frame older than one already offered is passed over, not counted as dropped: the tab has
   * a newer one (a tab that joins gets the newest received frame, ahead of those being decoded).
   */
  offer(delivery: Delivery<ServedFrame>): void {
    if (this.newestSeq !== undefined && delivery.frame.seq <= this.newestSeq) return delivery.settle(false);
    this.newestSeq = delivery.frame.seq;
    if ((delivery.frame.codec ?? 'jpeg') === 'jpeg') this.lastJpegRung = delivery.frame.rung;
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
        decodes: this.acceptsH264 ? 'h264' : 'jpeg',
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

  private adaptation() {
    // A page that cannot decode H.264 starts below the H.264 rung.
    const floor = this.ladder.h264 && !this.acceptsH264 ? 1 : 0;
    return { rungs: this.ladder.rungs, enabled: this.options.adapt, floor };
  }

  private chooseOnLadder(now: number, rungBitrate: (rung: number) => number): number {
    return this.outlet.chooseRung(now, this.ladder.rungBitrate ?? rungBitrate);
  }

  private sendFrame(frame: ServedFrame): boolean {
    if (this.socket.readyState !== this.socket.OPEN) return true;
    const codec = frame.codec ?? 'jpeg';
    // On an H.264 stream's ladder the H.264 is rung 0 and JPEG rung r is rung r + 1.
    const rung = this.ladder.h264 ? (codec === 'h264' ? 0 : frame.rung + 1) : frame.rung;
    const messages = tabFrameMessages(
      {
        seq: frame.seq,
        captureTime: frame.captureTime,
        width: frame.width,
        height: frame.height,
        rung,
        dropped: this.outlet.dropped,
        payloadBytes: frame.payload.length,
        codec,
        keyframe: frame.keyframe === true,
      },
      frame.payload,
    );
    this.window.sent(frame.seq, tabFrameBytes(frame.payload.length), this.now());
    this.lastRung = rung;
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
