import type { Encoding, FrameMeta, FrameSink, RawImage } from '@camstream/media';
import { OpenCVCodec } from '@camstream/opencv';
import { frameHeader, type FrameHeader } from '@camstream/protocol';
import { imageDifference, readFrameNumber, renderFakeFrame } from '@camstream/testkit';
import { SinkSet } from '../sinks/sink-set';
import { ReceiverStats } from '../stats';
import { AnySizeBufferPool } from './any-size-buffer-pool';
import { FramePipeline, type CheckedFrame } from './frame-pipeline';

const codec = new OpenCVCodec();

/** A pool that remembers what came back to it. */
class WatchedPool extends AnySizeBufferPool {
  readonly givenBack: Buffer[] = [];

  override give(buffer: Buffer): void {
    this.givenBack.push(buffer);
    super.give(buffer);
  }
}

/** A sink that holds each image until the test lets it go, checking its bytes do not change meanwhile. */
class HoldingSink implements FrameSink {
  readonly shown: Array<{ seq: number; width: number; height: number; number: number | null; data: Buffer }> = [];
  /** Images whose bytes changed while the sink still had them. */
  readonly overwritten: number[] = [];
  private gates: Array<() => void> = [];
  holding = false;

  constructor(readonly keepsImages = false) {}

  async write(image: RawImage, meta?: FrameMeta): Promise<void> {
    const before = Buffer.from(image.data);
    this.shown.push({ seq: meta!.seq, width: image.width, height: image.height, number: readFrameNumber(image), data: image.data });
    if (this.holding) await new Promise<void>((resolve) => this.gates.push(resolve));
    if (!before.equals(image.data)) this.overwritten.push(meta!.seq);
  }

  release(): void {
    for (const open of this.gates.splice(0)) open();
  }

  async close(): Promise<void> {}
}

interface Setup {
  pipeline: FramePipeline;
  payloads: WatchedPool;
  pixels: WatchedPool;
  sink: HoldingSink;
  stats: ReceiverStats;
  log: string[];
}

function setup(stream: { width: number; height: number }, options: { concurrency?: number; keepsImages?: boolean } = {}): Setup {
  const payloads = new WatchedPool(8);
  const pixels = new WatchedPool(8);
  const sink = new HoldingSink(options.keepsImages);
  const stats = new ReceiverStats();
  const log: string[] = [];
  const sinks = new SinkSet(async () => [sink], [], (error) => log.push(error.message));
  sinks.openFor({ ...stream, fps: 30, pixelFormat: 'bgr24', encoding: 'raw-bgr' });
  const pipeline = new FramePipeline({ codec, concurrency: options.concurrency ?? 2, payloads, pixels, sinks, stats, log: (l) => log.push(l), stoppedWith: () => undefined });
  pipeline.setStream(stream);
  return { pipeline, payloads, pixels, sink, stats, log };
}

/** A checked frame of the fake camera's picture `seq`, its payload in a buffer of `payloads`. */
async function frame(payloads: AnySizeBufferPool, seq: number, encoding: Encoding, width: number, height: number, rung = 0): Promise<CheckedFrame> {
  const encoded = await codec.encode(renderFakeFrame(seq, width, height), encoding, { quality: 90 });
  const payload = payloads.take(encoded.length);
  encoded.copy(payload);
  const header: FrameHeader = frameHeader(payload, { seq, captureTime: Date.now(), width, height, channels: 3, encoding, rung });
  return { header, payload, pooled: true, rung };
}

describe('FramePipeline', () => {
  it('shows a raw frame from its pooled payload, and gives the payload back only once every sink is done', async () => {
    const { pipeline, payloads, sink } = setup({ width: 64, height: 48 });
    sink.holding = true;
    const first = await frame(payloads, 1, 'raw-bgr', 64, 48);
    pipeline.offer(first);
    while (sink.shown.length === 0) await new Promise((resolve) => setImmediate(resolve));
    expect(sink.shown[0]!.data).toBe(first.payload); // raw frames are shown from the payload itself
    expect(payloads.givenBack).toEqual([]); // the sink still has it
    sink.release();
    await pipeline.idle();
    expect(payloads.givenBack).toEqual([first.payload]);
    expect(sink.overwritten).toEqual([]);
  });

  it('never gives back an image a sink keeps', async () => {
    const { pipeline, payloads, sink } = setup({ width: 64, height: 48 }, { keepsImages: true });
    pipeline.offer(await frame(payloads, 1, 'raw-bgr', 64, 48));
    await pipeline.idle();
    expect(sink.shown).toHaveLength(1);
    expect(payloads.givenBack).toEqual([]);
  });

  it('gives a JPEG payload back once decoded, and its pixels once shown', async () => {
    const { pipeline, payloads, pixels, sink } = setup({ width: 64, height: 48 });
    sink.holding = true;
    const jpeg = await frame(payloads, 7, 'jpeg', 64, 48);
    pipeline.offer(jpeg);
    while (sink.shown.length === 0) await new Promise((resolve) => setImmediate(resolve));
    expect(payloads.givenBack).toEqual([jpeg.payload]); // decoded: nothing reads it any more
    expect(pixels.givenBack).toEqual([]);
    sink.release();
    await pipeline.idle();
    expect(pixels.givenBack).toEqual([sink.shown[0]!.data]);
    expect(sink.shown[0]!.number).toBe(7);
  });

  it('scales a frame of a lower rung to the stream size before the sinks', async () => {
    const { pipeline, payloads, pixels, sink } = setup({ width: 128, height: 96 });
    pipeline.offer(await frame(payloads, 3, 'jpeg', 64, 48, 2));
    pipeline.offer(await frame(payloads, 4, 'raw-bgr', 32, 24, 3));
    pipeline.offer(await frame(payloads, 5, 'jpeg', 128, 96));
    await pipeline.idle();
    expect(sink.shown.map(({ seq, width, height, number }) => ({ seq, width, height, number }))).toEqual([
      { seq: 3, width: 128, height: 96, number: 3 },
      { seq: 4, width: 128, height: 96, number: 4 },
      { seq: 5, width: 128, height: 96, number: 5 },
    ]);
    // The picture is the one sent, only softer.
    const shown = sink.shown[0]!;
    expect(imageDifference({ width: 128, height: 96, channels: 3, data: shown.data }, renderFakeFrame(3, 128, 96))).toBeLessThan(20);
    // Each rung's decoded pixels (64x48) and the raw rung's payload went back once scaled.
    expect(pixels.givenBack.map((b) => b.length)).toEqual(expect.arrayContaining([64 * 48 * 3, 128 * 96 * 3]));
    expect(payloads.givenBack.map((b) => b.length)).toContain(32 * 24 * 3);
  });

  it('gives back the payload of a frame that never got decoded (a newer one took its place)', async () => {
    const { pipeline, payloads, sink, stats } = setup({ width: 64, height: 48 }, { concurrency: 1 });
    const frames = await Promise.all([1, 2, 3].map((seq) => frame(payloads, seq, 'raw-bgr', 64, 48)));
    for (const f of frames) pipeline.offer(f); // 1 decodes, 2 waits, 3 replaces 2
    await pipeline.idle();
    expect(sink.shown.map((s) => s.seq)).toEqual([1, 3]);
    expect(stats.skipped).toBe(1);
    expect(payloads.givenBack).toEqual(expect.arrayContaining(frames.map((f) => f.payload)));
    expect(payloads.givenBack).toHaveLength(3);
  });

  it('keeps no buffer of a frame that fails to decode, and counts it as corrupt', async () => {
    const { pipeline, payloads, pixels, stats, log } = setup({ width: 64, height: 48 });
    const broken = await frame(payloads, 1, 'jpeg', 64, 48);
    broken.payload.fill(0, 200); // the header is intact: a pixel buffer is taken, then the decode fails
    pipeline.offer(broken);
    await pipeline.idle();
    expect(stats.corrupt).toBe(1);
    expect(log.join('\n')).toMatch(/could not decode a frame/);
    expect(payloads.givenBack).toEqual([]);
    expect(pixels.givenBack).toEqual([]);
  });
});
