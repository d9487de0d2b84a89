import type { FrameCodec, FrameSink, FrameSource, RawImage } from '@camstream/media';
import { crc32 } from '@camstream/protocol';
import { FakeCamera, readFrameNumber } from '@camstream/testkit';
import type { EncodedFrame } from './encoded-frame';
import { pumpFrames } from './pump';

/** A raw passthrough codec that counts its calls. */
function countingCodec() {
  const encoded: RawImage[] = [];
  const codec: FrameCodec = {
    encode: async (image) => {
      encoded.push(image);
      return image.data;
    },
    resize: async () => {
      throw new Error('not used');
    },
    decode: async () => {
      throw new Error('not used');
    },
  };
  return { codec, encoded };
}

/** Resolves once condition() holds, looking again every few milliseconds; rejects after timeoutMs. */
async function eventually(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

describe('pumpFrames', () => {
  it('encodes each captured frame once and publishes it with its number, size and CRC', async () => {
    const { codec, encoded } = countingCodec();
    const published: EncodedFrame[] = [];
    const source = new FakeCamera({ width: 64, height: 48, fps: 0, frames: 6 });
    expect(await pumpFrames({ source, codec, encoding: 'raw-bgr', publish: (f) => published.push(f) })).toBe('source-ended');
    expect(encoded).toHaveLength(6);
    expect(published.map((f) => f.header.seq)).toEqual([0, 1, 2, 3, 4, 5]);
    for (const frame of published) {
      expect(frame.header).toMatchObject({ width: 64, height: 48, channels: 3, encoding: 'raw-bgr', payloadLength: 64 * 48 * 3 });
      expect(frame.header.crc32).toBe(crc32(frame.payload));
      expect(readFrameNumber({ width: 64, height: 48, channels: 3, data: frame.payload })).toBe(frame.header.seq);
    }
  });

  it('captures but does not encode while nobody watches', async () => {
    const { codec, encoded } = countingCodec();
    const published: EncodedFrame[] = [];
    const source = new FakeCamera({ width: 64, height: 48, fps: 0, frames: 10 });
    let captured = 0;
    const counting = { ...source, info: source.info, close: () => source.close(), read: async () => ((captured++, await source.read())) };
    await pumpFrames({ source: counting, codec, encoding: 'raw-bgr', publish: (f) => published.push(f), hasAudience: () => captured > 4 });
    expect(captured).toBe(11); // ten frames and the final null
    expect(encoded.length).toBe(published.length);
    expect(published.length).toBeLessThan(10);
    expect(published.length).toBeGreaterThanOrEqual(5);
  });

  it('stops when aborted', async () => {
    const { codec } = countingCodec();
    const abort = new AbortController();
    const source = new FakeCamera({ width: 64, height: 48, fps: 0 });
    let count = 0;
    const result = await pumpFrames({ source, codec, encoding: 'raw-bgr', publish: () => ++count === 3 && abort.abort(), signal: abort.signal });
    expect(result).toBe('stopped');
    expect(count).toBe(3);
  });

  describe('gives captured pixels back to the source', () => {
    /** A FakeCamera that records what is handed back, and a codec and preview that check it is not too early. */
    function recyclingSetup() {
      const camera = new FakeCamera({ width: 64, height: 48, fps: 0, frames: 8 });
      const recycled = new Set<RawImage>();
      let tooEarly = 0;
      let previewed = 0;
      const source: FrameSource = {
        info: camera.info,
        read: () => camera.read(),
        close: () => camera.close(),
        recycle: (image) => void recycled.add(image),
      };
      const codec: FrameCodec = {
        encode: async (image) => {
          await new Promise((resolve) => setTimeout(resolve, 5));
          if (recycled.has(image)) tooEarly++;
          return Buffer.from(image.data);
        },
        resize: async () => {
          throw new Error('not used');
        },
        decode: async () => {
          throw new Error('not used');
        },
      };
      const preview: FrameSink = {
        write: async (image) => {
          await new Promise((resolve) => setTimeout(resolve, 5));
          if (recycled.has(image)) tooEarly++;
          previewed++;
        },
        close: async () => undefined,
      };
      return { source, codec, preview, recycled, tooEarly: () => tooEarly, previewed: () => previewed };
    }

    it('once encoded and previewed', async () => {
      const { source, codec, preview, recycled, tooEarly } = recyclingSetup();
      await pumpFrames({ source, codec, encoding: 'jpeg', preview, publish: () => undefined });
      // The last preview may still run after the pump returns: its frame is recycled after it.
      await eventually(() => recycled.size === 8, 'all 8 frames to be recycled');
      expect(tooEarly()).toBe(0);
    });

    it('never for raw frames, whose payload is the captured image itself', async () => {
      const { source, preview, recycled, previewed } = recyclingSetup();
      const { codec } = countingCodec();
      await pumpFrames({ source, codec, encoding: 'raw-bgr', preview, publish: () => undefined });
      await eventually(() => previewed() === 8, 'all 8 previews to finish');
      // A recycle chained on the last preview would have run by the next turn of the loop.
      await new Promise((resolve) => setImmediate(resolve));
      expect(recycled.size).toBe(0);
    });
  });

  describe('with a source that has no pace of its own and answers at once (the test pattern at --fps 0)', () => {
    /** Resolves every read at once, like the test pattern with fps 0: no timer, no I/O, no setImmediate. */
    function immediateSource(frames: number) {
      const image: RawImage = { width: 8, height: 8, channels: 3, data: Buffer.alloc(8 * 8 * 3) };
      let reads = 0;
      const source: FrameSource = {
        info: { description: 'immediate', width: 8, height: 8, fps: 0, live: true },
        read: async () => (reads++ < frames ? { image, captureTimeMs: Date.now() } : null),
        close: async () => undefined,
      };
      return { source, reads: () => reads };
    }

    /** How many reads had happened when a timer set now got to run (timers only run if the loop yields). */
    function readsWhenTimerRan(reads: () => number): Promise<number> {
      return new Promise((resolve) => setTimeout(() => resolve(reads()), 0));
    }

    it('yields to timers and I/O while nobody watches', async () => {
      const { source, reads } = immediateSource(2000);
      const timer = readsWhenTimerRan(reads);
      const { codec } = countingCodec();
      await pumpFrames({ source, codec, encoding: 'raw-bgr', publish: () => undefined, hasAudience: () => false });
      expect(await timer).toBeLessThan(2000);
    });

    it('yields to timers and I/O on every frame while raw frames go out (an encode that resolves at once)', async () => {
      const { source, reads } = immediateSource(2000);
      const timer = readsWhenTimerRan(reads);
      const { codec } = countingCodec();
      let published = 0;
      await pumpFrames({ source, codec, encoding: 'raw-bgr', publish: () => void published++, hasAudience: () => true });
      expect(published).toBe(2000);
      expect(await timer).toBeLessThan(2000);
    });

    it('is not read while nobody watches, until someone does', async () => {
      const { source, reads } = immediateSource(Infinity);
      const { codec } = countingCodec();
      let watching = false;
      let audienceArrives!: () => void;
      let untilAudienceCalled!: () => void;
      const waiting = new Promise<void>((resolve) => (untilAudienceCalled = resolve));
      const abort = new AbortController();
      let published = 0;
      const pumping = pumpFrames({
        source,
        codec,
        encoding: 'raw-bgr',
        publish: () => ++published === 3 && abort.abort(),
        hasAudience: () => watching,
        untilAudience: () => {
          untilAudienceCalled();
          return new Promise<void>((resolve) => (audienceArrives = resolve));
        },
        signal: abort.signal,
      });
      await waiting;
      expect(reads()).toBe(1);
      expect(published).toBe(0);
      watching = true;
      audienceArrives();
      expect(await pumping).toBe('stopped');
      expect(published).toBe(3);
    });

    it('stops while waiting for an audience when aborted', async () => {
      const { source } = immediateSource(Infinity);
      const { codec } = countingCodec();
      const abort = new AbortController();
      const pumping = pumpFrames({
        source,
        codec,
        encoding: 'raw-bgr',
        publish: () => undefined,
        hasAudience: () => false,
        untilAudience: () => {
          abort.abort();
          return new Promise<void>(() => undefined);
        },
        signal: abort.signal,
      });
      expect(await pumping).toBe('stopped');
    });
  });
});
