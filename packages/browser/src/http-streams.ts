import type { ServerResponse } from 'node:http';
import { LatestWinsWriter, type Delivery, type Outlet } from '@camstream/fanout';
import type { ClientInfo, OutboundStream, ServedFrame } from './outbound';

export const MJPEG_BOUNDARY = 'camstreamframe';
const CRLF = Buffer.from('\r\n');

/** Resolves once the response's socket is closed. */
function closed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    if (res.closed) resolve();
    else res.once('close', () => resolve());
  });
}

/**
 * /stream.mjpg: multipart/x-mixed-replace of rung-0 JPEGs, for players (ffmpeg, VLC, OpenCV) and
 * browsers without WebSocket. It has no acknowledgements, so its latency is bounded only by the
 * socket buffers: on a link slower than the stream, frames queue in the kernel and latency grows
 * to seconds. Writing is latest-wins: while the socket is full, only the newest frame waits.
 */
export class MjpegStream implements Outlet<ServedFrame>, OutboundStream {
  readonly kind = 'mjpeg';
  private readonly writer: LatestWinsWriter<Delivery<ServedFrame>>;
  private sent = 0;
  private dropped = 0;
  /** The newest frame offered: an older one may still come (see offer). */
  private newestSeq: number | undefined;

  constructor(
    private readonly res: ServerResponse,
    readonly id: string | undefined,
    readonly remote: string,
  ) {
    this.writer = new LatestWinsWriter<Delivery<ServedFrame>>({
      send: (delivery) => this.writePart(delivery.frame),
      taken: (delivery) => delivery.settle(true),
      dropped: (delivery) => {
        this.dropped++;
        delivery.settle(false);
      },
    });
    res.on('drain', () => this.writer.drained());
    res.on('close', () => this.writer.close());
  }

  /** Players get the stream itself, never a lower rung. */
  chooseRung(): number {
    return 0;
  }

  /**
   * A frame older than one already offered is passed over, not counted as dropped: the player
   * has a newer one (a client that joins gets the newest received frame, ahead of those being
   * decoded). Frames never go backwards, but after streamRestarted().
   */
  offer(delivery: Delivery<ServedFrame>): void {
    if (this.newestSeq !== undefined && delivery.frame.seq <= this.newestSeq) return delivery.settle(false);
    this.newestSeq = delivery.frame.seq;
    this.writer.offer(delivery);
  }

  /** A frame that is not part of a fan-out (the latest one, for a client that just connected). */
  offerFrame(frame: ServedFrame): void {
    this.offer({ frame, settle: () => undefined });
  }

  /** The stream's frame numbers began again: the next frame goes whatever its number. */
  streamRestarted(): void {
    this.newestSeq = undefined;
  }

  info(): ClientInfo {
    return {
      kind: this.kind, id: this.id, remote: this.remote, sent: this.sent, dropped: this.dropped,
      bufferedBytes: this.res.writableLength, blocked: this.writer.blocked,
    };
  }

  stalledForMs(now: number): number {
    return this.writer.blockedForMs(now);
  }

  cut(): void {
    this.res.destroy();
  }

  end(): Promise<void> {
    this.writer.close();
    if (!this.res.writableEnded) this.res.end(`--${MJPEG_BOUNDARY}--\r\n`);
    return closed(this.res);
  }

  private writePart(frame: ServedFrame): boolean {
    const { res } = this;
    if (res.destroyed || res.writableEnded) return true;
    const partHeader =
      `--${MJPEG_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: ${frame.payload.length}\r\n` +
      `X-Frame-Seq: ${frame.seq}\r\nX-Capture-Time: ${frame.captureTime}\r\n\r\n`;
    // Header, JPEG, trailer as three writes in one cork: the JPEG is never copied.
    res.cork();
    res.write(partHeader, 'latin1');
    res.write(frame.payload);
    const keepsUp = res.write(CRLF);
    res.uncork();
    this.sent++;
    return keepsUp;
  }
}

/**
 * /events: Server-Sent Events with the receiver's figures and the server's status. Every event
 * carries the whole current picture, so latest-wins loses nothing: a page that reads slowly
 * skips to the newest figures.
 */
export class EventStream implements OutboundStream {
  readonly kind = 'events';
  private readonly writer: LatestWinsWriter<string>;
  private sent = 0;
  private dropped = 0;

  constructor(
    private readonly res: ServerResponse,
    readonly id: string | undefined,
    readonly remote: string,
  ) {
    this.writer = new LatestWinsWriter<string>({
      send: (text) => {
        if (res.destroyed || res.writableEnded) return true;
        this.sent++;
        return res.write(text);
      },
      dropped: () => this.dropped++,
    });
    res.on('drain', () => this.writer.drained());
    res.on('close', () => this.writer.close());
    res.write('retry: 2000\n\n');
  }

  send(event: string, data: unknown): void {
    this.writer.offer(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  info(): ClientInfo {
    return {
      kind: this.kind, id: this.id, remote: this.remote, sent: this.sent, dropped: this.dropped,
      bufferedBytes: this.res.writableLength, blocked: this.writer.blocked,
    };
  }

  stalledForMs(now: number): number {
    return this.writer.blockedForMs(now);
  }

  cut(): void {
    this.res.destroy();
  }

  end(): Promise<void> {
    this.writer.close();
    if (!this.res.writableEnded) this.res.end();
    return closed(this.res);
  }
}
