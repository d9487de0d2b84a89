import { type PreparedFrame, prepareFrame, type StreamDescription } from '@camstream/protocol';
import { readFrameNumber, renderFakeFrame } from '@camstream/testkit';
import { connectNats, type NatsConnectOptions, type NatsFrame, type NatsLink } from '../src';

/** Small raw frames: a fake camera's image with its frame number readable from the pixels. */
export const SMALL_STREAM: StreamDescription = { width: 64, height: 48, fps: 30, pixelFormat: 'bgr24', encoding: 'raw-bgr', source: 'test pattern' };

/** Fake frame `seq` of `stream` (raw), ready to publish. The image says `seq` in its number band. */
export function fakeFrame(seq: number, stream: StreamDescription = SMALL_STREAM, captureTime = performance.timeOrigin + performance.now()): PreparedFrame {
  const image = renderFakeFrame(seq, stream.width, stream.height);
  return prepareFrame(image.data, { seq, captureTime, width: stream.width, height: stream.height, channels: 3, encoding: 'raw-bgr' });
}

/** The frame number painted in a received raw frame's pixels. */
export function pictureNumber(frame: NatsFrame): number | null {
  return readFrameNumber({ width: frame.header.width, height: frame.header.height, channels: 3, data: frame.payload });
}

const links: NatsLink[] = [];

/** connectNats, closed after the test file. */
export async function link(url: string, options: Partial<NatsConnectOptions> = {}): Promise<NatsLink> {
  const connected = await connectNats({ url, env: {}, ...options });
  links.push(connected);
  return connected;
}

afterAll(async () => {
  await Promise.all(links.splice(0).map((each) => each.close().catch(() => undefined)));
});

/** Collects what a subscriber hands over; `until` resolves when a condition holds (checked on every frame). */
export class FrameCollector {
  readonly frames: NatsFrame[] = [];
  private readonly waiters: { condition: () => boolean; resolve: () => void }[] = [];

  readonly onFrame = (frame: NatsFrame): void => {
    this.frames.push(frame);
    this.check();
  };

  /** Frames of one camera. */
  of(camera: string): NatsFrame[] {
    return this.frames.filter((frame) => frame.camera === camera);
  }

  /** Resolves once `condition` holds, checked now and after every frame; rejects after timeoutMs saying what it waited for. */
  until(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${this.frames.length} frames so far)`));
      }, timeoutMs);
      const waiter = {
        condition,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      this.waiters.push(waiter);
    });
  }

  private check(): void {
    for (const waiter of [...this.waiters]) {
      if (waiter.condition()) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  }
}

/** Resolves on the first event that matches, from a listener registry of `(event) => void` callbacks. */
export function nextEvent<E>(listeners: ((event: E) => void)[], matches: (event: E) => boolean, what: string, timeoutMs = 15_000): Promise<E> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      listeners.splice(listeners.indexOf(listener), 1);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const listener = (event: E) => {
      if (!matches(event)) return;
      clearTimeout(timer);
      listeners.splice(listeners.indexOf(listener), 1);
      resolve(event);
    };
    listeners.push(listener);
  });
}
