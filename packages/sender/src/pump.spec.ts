import type { Delivery, Outlet } from '@camstream/fanout';
import type { FrameCodec, FrameSink, FrameSource, RawImage } from '@camstream/media';
import { crc32, type StreamDescription } from '@camstream/protocol';
import { FakeCamera, readFrameNumber } from '@camstream/testkit';
import { Broadcast } from './broadcast';
import type { OutgoingFrame } from './outgoing-frame';
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

function rawStream(source: FrameSource, encoding: StreamDescription['encoding'] = 'raw-bgr'): StreamDescription {
  const { width, height, fps } = source.info;
  return { width, height, fps, pixelFormat: 'bgr24', encoding };
}

/**
 * A viewer stand-in on rung 0. By default it writes every frame at once; with `hold`, it keeps
 * each frame (as a socket still writing it would) until release() is called.
 */
class RecordingOutlet implements Outlet<OutgoingFrame> {
  readonly frames: OutgoingFrame[] = [];
  readonly held: Array<Delivery<OutgoingFrame>> = [];
  constructor(private readonly options: { hold?: boolean; take?: boolean } = {}) {}
  chooseRung(): number {
    return 0;
  }
  offer(delivery: Delivery<OutgoingFrame>): void {
    this.frames.push(delivery.frame);
    if (this.options.hold) {
      delivery.frame.retain();
      this.held.push(delivery);
    }
    if (this.options.take !== false) delivery.settle(true);
  }
  /** Lets go of every frame it holds (written, or dropped). */
  releaseAll(): void {
    for (const d of this.held.splice(0)) d.frame.release();
  }
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
    const source = new FakeCamera({ width: 64, height: 48, fps: 0, frames: 6 });
    const broadcast = new Broadcast({ codec, stream: rawStream(source) });
    const viewer = new RecordingOutlet();
    broadcast.add(viewer);
    expect(await pumpFrames({ source, broadcast })).toBe('source-ended');
    expect(encoded).toHaveLength(6);
    expect(viewer.frames.map((f) => f.seq)).toEqual([0, 1, 2, 3, 4, 5]);
    for (const frame of viewer.frames) {
      const { header, payload } = frame.prepared;
      expect(header).toMatchObject({ width: 64, height: 48, channels: 3, encoding: 'raw-bgr', payloadLength: 64 * 48 * 3 });
      expect(header.crc32).toBe(crc32(payload));
      expect(readFrameNumber({ width: 64, height: 48, channels: 3, data: payload })).toBe(header.seq);
    }
  });

  it('captures but does not encode while nobody watches, and numbers from 0 once someone does', async () => {
    const { codec, encoded } = countingCodec();
    // A paced source (a camera) is read on time whether anyone watches or not.
    const source = new FakeCamera({ width: 64, height: 48, fps: 500, frames: 10 });
    const broadcast = new Broadcast({ codec, stream: rawStream(source) });
    const viewer = new RecordingOutlet();
    let captured = 0;
    const counting: FrameSource = {
      info: source.info,
      close: () => source.close(),
      read: async () => {
        if (++captured === 5) broadcast.add(viewer);
        return source.read();
      },
    };
    await pumpFrames({ source: counting, broadcast });
    expect(captured).toBe(11); // ten frames and the final null
    expect(encoded.length).toBe(viewer.frames.length);
    expect(viewer.frames.length).toBeLessThan(10);
    expect(viewer.frames.length).toBeGreaterThanOrEqual(5);
    expect(viewer.frames.map((f) => f.seq)).toEqual(viewer.frames.map((_, i) => i));
  });

  it('stops when aborted', async () => {
    const { codec } = countingCodec();
    const abort = new AbortController();
    const source = new FakeCamera({ width: 64, height: 48, fps: 0 });
    const broadcast = new Broadcast({ codec, stream: rawStream(source) });
    let count = 0;
    broadcast.add(new RecordingOutlet());
    const result = await pumpFrames({ source, broadcast, onPublished: () => ++count === 3 && abort.abort(), signal: abort.signal });
    expect(result).toBe('stopped');
    expect(count).toBe(3);
  });

  describe('gives captured pixels back to the source', () => {
    /** A FakeCamera that records what is handed back, and a codec and preview that check it is not too early. */
    function recyclingSetup(frames = 8) {
      const camera = new FakeCamera({ width: 64, height: 48, fps: 0, frames });
      const recycled: RawImage[] = [];
      let tooEarly = 0;
      let previewed = 0;
      const source: FrameSource = {
        info: camera.info,
        read: () => camera.read(),
        close: () => camera.close(),
        recycle: (image) => void recycled.push(image),
      };
      const codec: FrameCodec = {
        encode: async (image) => {
          await new Promise((resolve) => setTimeout(resolve, 5));
          if (recycled.includes(image)) tooEarly++;
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
          if (recycled.includes(image)) tooEarly++;
          previewed++;
        },
        close: async () => undefined,
      };
      return { source, codec, preview, recycled, tooEarly: () => tooEarly, previewed: () => previewed };
    }

    it('once encoded and previewed', async () => {
      const { source, codec, preview, recycled, tooEarly } = recyclingSetup();
      const broadcast = new Broadcast({ codec, stream: rawStream(source, 'png') });
      broadcast.add(new RecordingOutlet());
      await pumpFrames({ source, broadcast, preview });
      // The last preview may still run after the pump returns: its frame is recycled after it.
      await eventually(() => recycled.length === 8, 'all 8 frames to be recycled');
      expect(new Set(recycled).size).toBe(8);
      expect(tooEarly()).toBe(0);
    });

    it('raw frames, whose payload is the captured image itself, only once every viewer let go of them', async () => {
      const { source, preview, recycled, previewed } = recyclingSetup(4);
      const { codec } = countingCodec();
      const broadcast = new Broadcast({ codec, stream: rawStream(source) });
      const quick = new RecordingOutlet();
      const slow = new RecordingOutlet({ hold: true });
      broadcast.add(quick);
      broadcast.add(slow);
      await pumpFrames({ source, broadcast, preview });
      await eventually(() => previewed() === 4, 'all 4 previews to finish');
      // A recycle chained on the last preview would have run by the next turn of the loop.
      await new Promise((resolve) => setImmediate(resolve));
      expect(recycled).toEqual([]);
      slow.releaseAll();
      await eventually(() => recycled.length === 4, 'all 4 frames to be recycled');
      expect(recycled.map((image) => image.data)).toEqual(slow.frames.map((f) => f.prepared.payload));
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

    /** Resolves when the pump starts waiting for a viewer to join. */
    function waitingForViewer(broadcast: Broadcast): Promise<void> {
      const nextViewer = broadcast.nextViewer.bind(broadcast);
      return new Promise((resolve) => {
        broadcast.nextViewer = (orNow) => {
          resolve();
          return nextViewer(orNow);
        };
      });
    }

    /** How many reads had happened when a timer set now got to run (timers only run if the loop yields). */
    function readsWhenTimerRan(reads: () => number): Promise<number> {
      return new Promise((resolve) => setTimeout(() => resolve(reads()), 0));
    }

    it('yields to timers and I/O while nobody watches (with a preview, it is read all along)', async () => {
      const { source, reads } = immediateSource(2000);
      const timer = readsWhenTimerRan(reads);
      const { codec } = countingCodec();
      const broadcast = new Broadcast({ codec, stream: rawStream(source) });
      const preview: FrameSink = { write: () => undefined, close: async () => undefined };
      await pumpFrames({ source, broadcast, preview });
      expect(reads()).toBe(2001);
      expect(await timer).toBeLessThan(2000);
    });

    it('yields to timers and I/O on every frame while raw frames go out (an encode that resolves at once)', async () => {
      const { source, reads } = immediateSource(2000);
      const timer = readsWhenTimerRan(reads);
      const { codec } = countingCodec();
      const broadcast = new Broadcast({ codec, stream: rawStream(source) });
      const viewer = new RecordingOutlet();
      broadcast.add(viewer);
      await pumpFrames({ source, broadcast });
      expect(viewer.frames).toHaveLength(2000);
      expect(await timer).toBeLessThan(2000);
    });

    it('is not read while nobody watches, until someone does', async () => {
      const { source, reads } = immediateSource(Infinity);
      const { codec } = countingCodec();
      const broadcast = new Broadcast({ codec, stream: rawStream(source) });
      const waiting = waitingForViewer(broadcast);
      const abort = new AbortController();
      let published = 0;
      const pumping = pumpFrames({ source, broadcast, onPublished: () => ++published === 3 && abort.abort(), signal: abort.signal });
      // Nobody watches: after the first read, the pump waits for a viewer instead of reading on.
      await waiting;
      expect(reads()).toBe(1);
      expect(published).toBe(0);
      broadcast.add(new RecordingOutlet());
      expect(await pumping).toBe('stopped');
      expect(published).toBe(3);
    });

    it('stops while waiting for an audience when aborted', async () => {
      const { source } = immediateSource(Infinity);
      const { codec } = countingCodec();
      const broadcast = new Broadcast({ codec, stream: rawStream(source) });
      const abort = new AbortController();
      const waiting = waitingForViewer(broadcast);
      const pumping = pumpFrames({ source, broadcast, signal: abort.signal });
      await waiting;
      abort.abort();
      expect(await pumping).toBe('stopped');
    });

    it('encodes the next frame while the previous one still is, but not a third before the first went out', async () => {
      const { source } = immediateSource(Infinity);
      const encodes: Array<() => void> = [];
      const codec: FrameCodec = {
        encode: (image) => new Promise((resolve) => encodes.push(() => resolve(Buffer.from(image.data)))),
        resize: async () => {
          throw new Error('not used');
        },
        decode: async () => {
          throw new Error('not used');
        },
      };
      const broadcast = new Broadcast({ codec, stream: rawStream(source, 'png') });
      const viewer = new RecordingOutlet();
      broadcast.add(viewer);
      const abort = new AbortController();
      const pumping = pumpFrames({ source, broadcast, signal: abort.signal });
      await eventually(() => encodes.length === 2, 'two encodes under way');
      expect(viewer.frames).toEqual([]);
      // Frame 0 is encoded and taken: frame 2 may start; frame 1 was offered only after frame 0.
      encodes[0]!();
      await eventually(() => encodes.length === 3, 'a third encode');
      encodes[1]!();
      await eventually(() => viewer.frames.length === 2, 'frames 0 and 1');
      expect(viewer.frames.map((f) => f.seq)).toEqual([0, 1]);
      expect(encodes).toHaveLength(4);
      abort.abort();
      for (const finish of encodes.slice(2)) finish();
      expect(await pumping).toBe('stopped');
    });

    it('offers the next frame only once the previous one was taken, or a viewer joined, and encodes it meanwhile', async () => {
      const { source, reads } = immediateSource(Infinity);
      const { codec, encoded } = countingCodec();
      const broadcast = new Broadcast({ codec, stream: rawStream(source) });
      let waitedForTaken!: () => void;
      const waited = new Promise<void>((resolve) => (waitedForTaken = resolve));
      let waits = 0;
      const whenViewerJoins = broadcast.whenViewerJoins.bind(broadcast);
      broadcast.whenViewerJoins = (listener) => {
        waits++;
        waitedForTaken();
        return whenViewerJoins(listener);
      };
      // Takes nothing: the frame waits in its slot, as for a viewer whose window is full.
      const stuck = new RecordingOutlet({ take: false });
      broadcast.add(stuck);
      const abort = new AbortController();
      const pumping = pumpFrames({ source, broadcast, signal: abort.signal });
      // Frame 1 was read while frame 0 was published; it is encoded while the pump waits for frame 0
      // to be taken, frame 2 read meanwhile; nothing further is encoded until then.
      await waited;
      await eventually(() => encoded.length >= 2, 'frame 1 encoded');
      expect(encoded).toHaveLength(2);
      expect(stuck.frames.map((f) => f.seq)).toEqual([0]);
      expect(reads()).toBe(3);
      expect(waits).toBe(1);
      // A newcomer gets frames at once, though the first viewer still holds the previous one.
      const newcomer = new RecordingOutlet();
      broadcast.add(newcomer);
      await eventually(() => newcomer.frames.length >= 5, 'frames for the newcomer');
      // Frame 1 had been encoded for the first viewer alone; the newcomer gets the next one.
      expect(newcomer.frames.map((f) => f.seq).slice(0, 5)).toEqual([2, 3, 4, 5, 6]);
      abort.abort();
      expect(await pumping).toBe('stopped');
    });
  });
});
