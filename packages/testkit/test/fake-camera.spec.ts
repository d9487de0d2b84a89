import type { CapturedFrame } from '@camstream/media';
import { FakeCamera, PregeneratedSource, imageDifference, readFrameNumber, renderFakeFrame } from '../src';

async function readAll(source: { read(): Promise<CapturedFrame | null> }): Promise<CapturedFrame[]> {
  const frames: CapturedFrame[] = [];
  for (let frame = await source.read(); frame; frame = await source.read()) frames.push(frame);
  return frames;
}

describe('FakeCamera', () => {
  it('delivers the requested frames in order, then null', async () => {
    const camera = new FakeCamera({ width: 64, height: 48, fps: 0, frames: 5, startAt: 10 });
    expect(camera.info).toMatchObject({ width: 64, height: 48, fps: 0, live: false });
    const frames = await readAll(camera);
    expect(frames.map((frame) => readFrameNumber(frame.image))).toEqual([10, 11, 12, 13, 14]);
    expect(imageDifference(frames[2]!.image, renderFakeFrame(12, 64, 48))).toBe(0);
    expect(await camera.read()).toBeNull();
    expect(camera.framesDelivered).toBe(5);
  });

  it('is live without a frame limit and stops at close()', async () => {
    const camera = new FakeCamera({ width: 64, height: 48, fps: 0 });
    expect(camera.info.live).toBe(true);
    expect(readFrameNumber((await camera.read())!.image)).toBe(0);
    await camera.close();
    expect(await camera.read()).toBeNull();
  });

  it('close() ends a read that is waiting for its frame time', async () => {
    const camera = new FakeCamera({ width: 64, height: 48, fps: 0.5 });
    await camera.read();
    const pending = camera.read();
    await camera.close();
    expect(await pending).toBeNull();
  });

  it('stamps captureTimeMs with the wall clock', async () => {
    const camera = new FakeCamera({ width: 64, height: 48, fps: 0 });
    const before = Date.now();
    const frame = (await camera.read())!;
    expect(frame.captureTimeMs).toBeGreaterThanOrEqual(before - 5);
    expect(frame.captureTimeMs).toBeLessThanOrEqual(Date.now() + 5);
  });

  it('paces reads at roughly fps', async () => {
    const camera = new FakeCamera({ width: 64, height: 48, fps: 50, frames: 11 });
    const start = performance.now();
    const frames = await readAll(camera);
    const elapsed = performance.now() - start;
    expect(frames).toHaveLength(11);
    // 10 intervals of 20 ms: a lower bound only, a busy machine can only add to it. The rate
    // it reaches is a figure for packages/testkit/bench/fake-sources-bench.ts.
    expect(elapsed).toBeGreaterThan(150);
    expect(frames[10]!.captureTimeMs - frames[0]!.captureTimeMs).toBeGreaterThan(150);
  });

  it('never changes a frame it handed out', async () => {
    const camera = new FakeCamera({ width: 64, height: 48, fps: 0, frames: 20 });
    const first = (await camera.read())!;
    const copy = Buffer.from(first.image.data);
    const rest = await readAll(camera);
    expect(rest).toHaveLength(19);
    expect(first.image.data.equals(copy)).toBe(true);
    expect(new Set(rest.map((frame) => frame.image.data.buffer)).size).toBeGreaterThan(1);
  });

  it('serves concurrent read() calls in order', async () => {
    const camera = new FakeCamera({ width: 64, height: 48, fps: 0, frames: 4 });
    const frames = await Promise.all([camera.read(), camera.read(), camera.read(), camera.read(), camera.read()]);
    expect(frames.map((frame) => (frame ? readFrameNumber(frame.image) : null))).toEqual([0, 1, 2, 3, null]);
  });

  it('with fps 0 still lets timers and I/O run between frames', async () => {
    const camera = new FakeCamera({ width: 64, height: 48, fps: 0 });
    let timerFired = false;
    setTimeout(() => (timerFired = true), 1);
    const deadline = performance.now() + 2000;
    while (!timerFired && performance.now() < deadline) await camera.read();
    expect(timerFired).toBe(true);
  });

  it('rejects bad options', () => {
    expect(() => new FakeCamera({ width: 64, height: 48, fps: -1 })).toThrow(RangeError);
    expect(() => new FakeCamera({ width: 64, height: 48, startAt: -1 })).toThrow(RangeError);
  });
});

describe('PregeneratedSource', () => {
  it('keeps counting frame numbers while cycling through its contents', async () => {
    const source = new PregeneratedSource({ width: 96, height: 64, fps: 0, frames: 7, distinctFrames: 3, startAt: 5 });
    const frames = await readAll(source);
    expect(frames.map((frame) => readFrameNumber(frame.image))).toEqual([5, 6, 7, 8, 9, 10, 11]);
    frames.forEach((frame, i) => {
      expect(frame.image.data.equals(source.expectedImage(5 + i).data)).toBe(true);
    });
    // Content repeats with the cycle: frame 5 and frame 8 share it (5 % 3 === 8 % 3).
    const contentStart = 96 * 32 * 3;
    expect(frames[0]!.image.data.subarray(contentStart).equals(frames[3]!.image.data.subarray(contentStart))).toBe(true);
    expect(frames[0]!.image.data.subarray(contentStart).equals(frames[1]!.image.data.subarray(contentStart))).toBe(false);
  });

  it('hands out fresh buffers that never change', async () => {
    const source = new PregeneratedSource({ width: 64, height: 48, fps: 0, frames: 10, distinctFrames: 2 });
    const first = (await source.read())!;
    const copy = Buffer.from(first.image.data);
    await readAll(source);
    expect(first.image.data.equals(copy)).toBe(true);
  });

  it('paces like FakeCamera', async () => {
    const source = new PregeneratedSource({ width: 64, height: 48, fps: 40, frames: 5 });
    expect(source.info.live).toBe(false);
    const start = performance.now();
    await readAll(source);
    expect(performance.now() - start).toBeGreaterThan(75);
  });
});
