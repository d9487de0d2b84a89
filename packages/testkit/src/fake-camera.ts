import type { CapturedFrame, FrameSource, RawImage, SourceInfo } from '@camstream/media';
import { renderFakeFrame, writeNumberBand } from './fake-frames';

export interface FakeCameraOptions {
  width: number;
  height: number;
  /** Frames per second to pace read() at; 0 = as fast as the reader asks. Default 30. */
  fps?: number;
  /** How many frames before read() returns null; Infinity (default) makes a live source. */
  frames?: number;
  /** Number of the first frame (default 0); later frames count up from it, wrapping at 2^32. */
  startAt?: number;
}

const FRAME_NUMBER_RANGE = 2 ** 32;

/**
 * Shared pacing and lifecycle for the fake sources: frame k is due at first read + k / fps.
 * A reader that falls more than one frame behind restarts the schedule from now, like a camera
 * that drops the frames nobody took instead of delivering a stale burst.
 */
abstract class PacedFakeSource implements FrameSource {
  readonly info: SourceInfo;
  private readonly frameLimit: number;
  private readonly startAt: number;
  private delivered = 0;
  private nextDueMs: number | undefined;
  private closed = false;
  private wakeSleeper: (() => void) | undefined;
  private sleepTimer: NodeJS.Timeout | undefined;
  /** read() calls are served one at a time, in order, even if the caller does not await. */
  private readQueue: Promise<unknown> = Promise.resolve();

  protected constructor(options: FakeCameraOptions, description: string) {
    const { width, height, fps = 30, frames = Infinity, startAt = 0 } = options;
    if (!(fps >= 0) || !Number.isFinite(fps)) throw new RangeError(`fps must be a finite number >= 0, got ${fps}`);
    if (!(frames >= 0)) throw new RangeError(`frames must be >= 0, got ${frames}`);
    if (!Number.isInteger(startAt) || startAt < 0 || startAt >= FRAME_NUMBER_RANGE) {
      throw new RangeError(`startAt must be an integer in 0..2^32-1, got ${startAt}`);
    }
    this.frameLimit = frames;
    this.startAt = startAt;
    this.info = { description: `${description} ${width}x${height}`, width, height, fps, live: frames === Infinity };
  }

  /** Frames handed out so far. */
  get framesDelivered(): number {
    return this.delivered;
  }

  /** The number that the next frame will carry. */
  get nextFrameNumber(): number {
    return (this.startAt + this.delivered) % FRAME_NUMBER_RANGE;
  }

  read(): Promise<CapturedFrame | null> {
    const result = this.readQueue.then(() => this.readNext());
    this.readQueue = result.catch(() => undefined);
    return result;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake();
  }

  protected abstract render(frameNumber: number): RawImage;

  private async readNext(): Promise<CapturedFrame | null> {
    if (this.closed || this.delivered >= this.frameLimit) return null;
    await this.waitUntilDue();
    if (this.closed) return null;
    const image = this.render(this.nextFrameNumber);
    this.delivered++;
    return { image, captureTimeMs: performance.timeOrigin + performance.now() };
  }

  private async waitUntilDue(): Promise<void> {
    const fps = this.info.fps;
    if (fps === 0) {
      // Yield to the event loop every frame so a fast loop never starves sockets and timers.
      await new Promise<void>((resolve) => setImmediate(resolve));
      return;
    }
    const interval = 1000 / fps;
    const now = performance.now();
    if (this.nextDueMs === undefined || now - this.nextDueMs > interval) this.nextDueMs = now;
    const wait = this.nextDueMs - now;
    this.nextDueMs += interval;
    if (wait > 0) {
      await new Promise<void>((resolve) => {
        this.wakeSleeper = resolve;
        this.sleepTimer = setTimeout(resolve, wait);
      });
      this.wakeSleeper = undefined;
    } else {
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  private wake(): void {
    if (this.sleepTimer) clearTimeout(this.sleepTimer);
    this.wakeSleeper?.();
  }
}

/**
 * A camera without a camera: deterministic BGR frames from renderFakeFrame (frame number in
 * the top band, gradients below), paced at `fps`. Every read() returns a newly allocated
 * buffer, so frames already handed out never change.
 */
export class FakeCamera extends PacedFakeSource {
  constructor(options: FakeCameraOptions) {
    super(options, 'fake camera');
  }

  protected render(frameNumber: number): RawImage {
    return renderFakeFrame(frameNumber, this.info.width, this.info.height);
  }
}

export interface PregeneratedSourceOptions extends FakeCameraOptions {
  /** How many distinct contents to pre-render and cycle through (default 10; each costs a frame of memory). */
  distinctFrames?: number;
}

/**
 * A fake camera for benchmarks: the content of `distinctFrames` frames is rendered once up
 * front, and each read() only copies one (a memcpy) and writes the number band. Frame numbers
 * keep increasing; the content of frame n is that of frame n mod distinctFrames, i.e. frame n
 * equals renderFakeFrame(n, width, height, n % distinctFrames) exactly (see expectedImage).
 */
export class PregeneratedSource extends PacedFakeSource {
  readonly distinctFrames: number;
  private readonly contents: RawImage[] = [];

  constructor(options: PregeneratedSourceOptions) {
    super(options, 'pregenerated fake camera');
    const { distinctFrames = 10 } = options;
    if (!Number.isInteger(distinctFrames) || distinctFrames < 1) {
      throw new RangeError(`distinctFrames must be a positive integer, got ${distinctFrames}`);
    }
    this.distinctFrames = distinctFrames;
    for (let i = 0; i < distinctFrames; i++) this.contents.push(renderFakeFrame(i, options.width, options.height));
  }

  /** Exactly the image this source delivers as frame `frameNumber`. */
  expectedImage(frameNumber: number): RawImage {
    return renderFakeFrame(frameNumber, this.info.width, this.info.height, frameNumber % this.distinctFrames);
  }

  protected render(frameNumber: number): RawImage {
    const { width, height } = this.info;
    const template = this.contents[frameNumber % this.distinctFrames]!;
    // A fresh buffer per frame: the previous one may still be queued on a socket.
    const data = Buffer.allocUnsafe(template.data.length);
    template.data.copy(data);
    writeNumberBand(data, frameNumber, width, height);
    return { width, height, channels: 3, data };
  }
}
