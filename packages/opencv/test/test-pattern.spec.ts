import type { FrameSource } from '@camstream/media';
import { openSource } from '../src/sources';
import { testPatternLayout } from '../src/test-pattern';
import { cropBytes } from './support/images';

describe('test pattern source', () => {
  let source: FrameSource | undefined;
  afterEach(async () => {
    await source?.close();
    source = undefined;
  });

  it('defaults to 1280x720 at 30 fps, live', async () => {
    source = await openSource('test', {});
    expect(source.info).toEqual({ description: 'test pattern', width: 1280, height: 720, fps: 30, live: true });
    const frame = await source.read();
    expect(frame?.image).toMatchObject({ width: 1280, height: 720, channels: 3 });
    expect(frame?.image.data.length).toBe(1280 * 720 * 3);
  });

  it('delivers the requested size and rate, and "pattern" means the same', async () => {
    source = await openSource('pattern', { width: 640, height: 360, fps: 25 });
    expect(source.info).toMatchObject({ width: 640, height: 360, fps: 25, live: true });
    const frame = await source.read();
    expect(frame?.image).toMatchObject({ width: 640, height: 360, channels: 3 });
    expect(frame?.image.data.length).toBe(640 * 360 * 3);
  });

  it('moves: consecutive frames differ, and so does the frame number box', async () => {
    source = await openSource('test', { width: 320, height: 240, fps: 0 });
    const layout = testPatternLayout(320, 240);
    const frames = [];
    for (let i = 0; i < 4; i++) frames.push((await source.read())!.image);
    for (let i = 1; i < frames.length; i++) {
      expect(frames[i]!.data.equals(frames[i - 1]!.data)).toBe(false);
      const numberNow = cropBytes(frames[i]!, layout.frameNumberBox);
      const numberBefore = cropBytes(frames[i - 1]!, layout.frameNumberBox);
      expect(numberNow.equals(numberBefore)).toBe(false);
    }
    // The box really holds drawn text: bright pixels on the dark box.
    const box = cropBytes(frames[0]!, layout.frameNumberBox);
    expect(box.some((value) => value > 200)).toBe(true);
    expect(box.some((value) => value < 40)).toBe(true);
  });

  it('draws a recycled frame\'s buffer afresh, and never hands out one still in use', async () => {
    source = await openSource('test', { width: 320, height: 240, fps: 0 });
    const first = (await source.read())!.image;
    const kept = Buffer.from(first.data);
    const second = (await source.read())!.image;
    expect(second.data).not.toBe(first.data);
    expect(first.data.equals(kept)).toBe(true); // not drawn over: it was not given back
    source.recycle!(first);
    const third = (await source.read())!.image;
    expect(third.data).toBe(first.data);
    const fresh = await openSource('test', { width: 320, height: 240, fps: 0 });
    for (let i = 0; i < 2; i++) await fresh.read();
    // Frame 2, completely redrawn (the bottom half: bar and ball; the top holds the clock).
    const bottom = { x: 0, y: 120, width: 320, height: 120 };
    expect(cropBytes(third, bottom).equals(cropBytes((await fresh.read())!.image, bottom))).toBe(true);
    expect(cropBytes(third, bottom).equals(cropBytes({ ...first, data: kept }, bottom))).toBe(false);
    await fresh.close();
  });

  it('stamps frames with the wall clock, with a sub-millisecond fraction', async () => {
    source = await openSource('test', { width: 64, height: 48, fps: 0 });
    const stamps: number[] = [];
    // Milliseconds since the epoch, taken during the reads: between two readings of the same
    // clock (Date.now() is another clock source, which may drift from it by a few ms).
    const wallClock = () => performance.timeOrigin + performance.now();
    const before = wallClock();
    for (let i = 0; i < 5; i++) stamps.push((await source.read())!.captureTimeMs);
    const after = wallClock();
    for (const stamp of stamps) {
      expect(stamp).toBeGreaterThanOrEqual(before);
      expect(stamp).toBeLessThanOrEqual(after);
    }
    expect(stamps.some((stamp) => !Number.isInteger(stamp))).toBe(true);
    expect([...stamps].sort((a, b) => a - b)).toEqual(stamps);
  });

  it('paces reads at the requested rate (loosely: 10 frames at 50 fps take at least 150 ms)', async () => {
    source = await openSource('test', { width: 160, height: 120, fps: 50 });
    const start = performance.now();
    for (let i = 0; i < 10; i++) await source.read();
    expect(performance.now() - start).toBeGreaterThanOrEqual(150);
  });

  it('runs unpaced at fps 0: no read waits for a timer', async () => {
    source = await openSource('test', { width: 160, height: 120, fps: 0 });
    expect(source.info.fps).toBe(0);
    // A read that waited for its frame time would let the event loop turn; none does.
    let loopTurned = false;
    setImmediate(() => (loopTurned = true));
    for (let i = 0; i < 20; i++) expect(await source.read()).not.toBeNull();
    expect(loopTurned).toBe(false);
    // (How fast it draws is a figure: the 'test pattern frame (render)' row of bench/codec-bench.ts.)
  });

  it('returns null after close', async () => {
    source = await openSource('test', { width: 64, height: 48, fps: 0 });
    await source.close();
    expect(await source.read()).toBeNull();
  });

  it('rejects sizes it cannot draw', async () => {
    await expect(openSource('test', { width: 0, height: 10 })).rejects.toThrow(/width must be a positive whole number/);
    await expect(openSource('test', { width: 8, height: 8 })).rejects.toThrow(/at least 16x16/);
    await expect(openSource('test', { fps: -1 })).rejects.toThrow(/fps must be 0 or more/);
  });
});
