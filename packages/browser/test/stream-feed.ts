import type { RawImage } from '@camstream/media';
import type { OpenCVCodec } from '@camstream/opencv';
import { FakeCamera } from '@camstream/testkit';
import type { BrowserServer } from '../src';

export interface FedFrame {
  seq: number;
  captureTime: number;
  image: RawImage;
  /** The stream's payload: a JPEG of `image`, or undefined for a raw stream. */
  jpeg: Buffer | undefined;
}

/**
 * Feeds a BrowserServer the way the receiver does: each frame of the testkit's fake camera (whose
 * frame number is readable from its pixels, and is also its seq) first as received, then as the
 * decoded image. JPEG streams are encoded once here, like a sender would.
 */
export class StreamFeed {
  readonly camera: FakeCamera;

  constructor(
    private readonly server: BrowserServer,
    private readonly codec: OpenCVCodec,
    private readonly options: { width: number; height: number; fps?: number; encoding?: 'jpeg' | 'raw-bgr'; quality?: number },
  ) {
    this.camera = new FakeCamera({ width: options.width, height: options.height, fps: options.fps ?? 0 });
  }

  /** Captures, encodes and publishes one frame; resolves once the server took the image. */
  async next(): Promise<FedFrame> {
    const frame = await this.prepare();
    if (!frame) throw new Error('the fake camera was closed');
    await this.publish(frame);
    return frame;
  }

  /** The next frame, encoded as the stream would carry it, not published yet (null once closed). */
  async prepare(): Promise<FedFrame | null> {
    const seq = this.camera.nextFrameNumber;
    const captured = await this.camera.read();
    if (!captured) return null;
    const jpeg = this.options.encoding === 'raw-bgr' ? undefined : await this.codec.encode(captured.image, 'jpeg', { quality: this.options.quality ?? 80 });
    return { seq, captureTime: captured.captureTimeMs, image: captured.image, jpeg };
  }

  async publish(frame: FedFrame): Promise<void> {
    const { width, height } = this.options;
    const encoding = frame.jpeg ? 'jpeg' : 'raw-bgr';
    this.server.received({ seq: frame.seq, captureTime: frame.captureTime, width, height, encoding }, frame.jpeg ?? frame.image.data);
    await this.server.write(frame.image, { seq: frame.seq, captureTime: frame.captureTime });
  }

  /**
   * Publishes frames (paced by the camera's fps) until stop() is called; next() goes on from
   * there. `since`: the wall clock (ms since the epoch) before the first of them was captured.
   */
  run(): { since: number; stop(): Promise<void> } {
    const since = Date.now();
    let stopped = false;
    const done = (async () => {
      while (!stopped) {
        const frame = await this.prepare();
        if (!frame || stopped) return;
        await this.publish(frame);
      }
    })();
    return {
      since,
      stop: async () => {
        stopped = true;
        await done;
      },
    };
  }

  close(): Promise<void> {
    return this.camera.close();
  }
}
