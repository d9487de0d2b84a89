import type { Socket } from 'node:net';
import { LatestWinsWriter, type Delivery } from '@camstream/fanout';
import { encodeTutorialFrame, type TutorialFrameParts } from '@camstream/tutorial-wire';
import type { ImageOutlet } from './broadcast';
import type { SharedImage } from './shared-image';

export interface TutorialViewerOptions {
  /** Drops are logged at most this often per client (default 2 s); the rest at its leaving. */
  dropLogIntervalMs?: number;
  log?: (line: string) => void;
  now?: () => number;
}

/** Each image is framed once, whatever the number of clients: they share its head and tail. */
const framedImages = new WeakMap<SharedImage, TutorialFrameParts>();

/**
 * One client of the tutorial's wire (its receiver script, or camstream's --wire tutorial): every
 * captured image goes out as the tutorial's streamer sends it, an 8-byte little-endian length and
 * `pickle.dumps(frame)`, through a latest-wins writer. The wire has no acknowledgements, so the
 * socket's drain is the only flow control: while the socket holds unsent bytes, the newest image
 * waits in the one-frame slot and a newer one replaces it (a drop; the wire has no header to
 * declare it in, so drops are counted and logged). The pixels are the captured buffer itself,
 * written between the pickle's head and tail inside cork()/uncork(), never copied.
 */
export class TutorialViewer implements ImageOutlet {
  readonly wire = 'tutorial' as const;
  private readonly writer: LatestWinsWriter<Delivery<SharedImage>>;
  private readonly now: () => number;
  private sentCount = 0;
  private droppedCount = 0;
  private bytes = 0;
  private droppedAtLastLog = 0;
  private lastDropLogAt: number;
  private closed = false;
  private refusedImage = false;

  constructor(
    readonly id: number,
    /** The client's address and port: the wire carries no name. */
    readonly name: string,
    private readonly socket: Socket,
    private readonly options: TutorialViewerOptions = {},
  ) {
    this.now = options.now ?? (() => performance.now());
    this.lastDropLogAt = this.now();
    this.writer = new LatestWinsWriter<Delivery<SharedImage>>({
      send: (delivery) => this.send(delivery.frame),
      taken: (delivery) => delivery.settle(true),
      dropped: (delivery) => {
        // The image left in the slot when the client goes is no drop: nothing follows it.
        if (!this.closed) {
          this.droppedCount++;
          this.flushDropLog();
        }
        delivery.frame.release();
        delivery.settle(false);
      },
      now: this.now,
    });
    socket.on('drain', () => this.writer.drained());
  }

  /** Images written to this client. */
  get sent(): number {
    return this.sentCount;
  }

  /** Images skipped for this client because its socket had not taken the previous one yet. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Bytes of frames (length, pickle) written to it. */
  get bytesSent(): number {
    return this.bytes;
  }

  /** Bytes written but not yet taken by the kernel: at most about the frame being written. */
  get queuedBytes(): number {
    return this.socket.writableLength;
  }

  offer(delivery: Delivery<SharedImage>): void {
    delivery.frame.retain();
    this.writer.offer(delivery);
  }

  /** How long its socket has refused more bytes (0 while it takes them). */
  blockedForMs(now = this.now()): number {
    return this.writer.blockedForMs(now);
  }

  /** Logs the drops since the last such line, once the interval is over. */
  flushDropLog(now = this.now()): void {
    const fresh = this.droppedCount - this.droppedAtLastLog;
    if (fresh === 0 || now - this.lastDropLogAt < (this.options.dropLogIntervalMs ?? 2000)) return;
    const seconds = ((now - this.lastDropLogAt) / 1000).toFixed(1);
    this.options.log?.(
      `tutorial client #${this.id} (${this.name}): ${fresh} frames dropped in the last ${seconds} s, ${this.droppedCount} in all (it reads slower than frames are captured; the tutorial wire cannot tell it)`,
    );
    this.droppedAtLastLog = this.droppedCount;
    this.lastDropLogAt = now;
  }

  /** No more images: the waiting one is let go. */
  close(): void {
    this.closed = true;
    this.writer.close();
  }

  private send(shared: SharedImage): boolean {
    const socket = this.socket;
    if (this.closed || socket.destroyed || socket.writableEnded) {
      shared.release();
      return true;
    }
    let parts = framedImages.get(shared);
    if (!parts) {
      try {
        parts = encodeTutorialFrame({ width: shared.image.width, height: shared.image.height, data: shared.image.data });
      } catch (error) {
        // Only an (H, W, 3) uint8 image has the tutorial's shape: say so once, not once a frame.
        if (!this.refusedImage) this.options.log?.(`tutorial client #${this.id} (${this.name}): cannot send a ${shared.image.width}x${shared.image.height}x${shared.image.channels} image: ${(error as Error).message}`);
        this.refusedImage = true;
        shared.release();
        return true;
      }
      framedImages.set(shared, parts);
    }
    // Three writes inside cork(): one system call, and the captured pixels are never copied.
    socket.cork();
    socket.write(parts.head);
    // Called once the pixels left Node (or the socket failed): only then may the capture be reused.
    socket.write(parts.pixels, () => shared.release());
    const ok = socket.write(parts.tail);
    socket.uncork();
    this.sentCount++;
    this.bytes += parts.byteLength;
    return ok;
  }
}
