/*
 * How fast the testkit's fake sources are: the speed figures its unit tests do not assert.
 *   npx ts-node -P packages/testkit/tsconfig.json packages/testkit/bench/fake-sources-bench.ts
 * - renderFakeFrame: median ms per frame (a fake camera at 30 fps has 33 ms per frame).
 * - FakeCamera and PregeneratedSource at fps 0: frames per second, read back to back.
 * - FakeCamera paced at 30 and 50 fps: the rate it reaches over 2 s, and the latest a frame came.
 */
import { FakeCamera, PregeneratedSource, renderFakeFrame } from '../src';

const SIZES = [
  [320, 240],
  [640, 480],
  [1280, 720],
] as const;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function renderCost(width: number, height: number, runs = 30): number {
  renderFakeFrame(0, width, height); // warm-up
  const times: number[] = [];
  for (let n = 1; n <= runs; n++) {
    const start = performance.now();
    renderFakeFrame(n, width, height);
    times.push(performance.now() - start);
  }
  return median(times);
}

async function unpacedRate(source: FakeCamera | PregeneratedSource, seconds = 1): Promise<number> {
  await source.read(); // warm-up
  const start = performance.now();
  let frames = 0;
  while (performance.now() - start < seconds * 1000) {
    await source.read();
    frames++;
  }
  await source.close();
  return frames / ((performance.now() - start) / 1000);
}

async function pacedFigures(fps: number, seconds = 2): Promise<{ fps: number; worstLateMs: number }> {
  const camera = new FakeCamera({ width: 320, height: 240, fps });
  const interval = 1000 / fps;
  const first = performance.now();
  let frames = 0;
  let worstLateMs = 0;
  while (performance.now() - first < seconds * 1000) {
    await camera.read();
    worstLateMs = Math.max(worstLateMs, performance.now() - (first + frames * interval));
    frames++;
  }
  await camera.close();
  // frames - 1 intervals between the first read and the last.
  return { fps: (frames - 1) / ((performance.now() - first) / 1000), worstLateMs };
}

async function main(): Promise<void> {
  console.log('renderFakeFrame, median ms per frame');
  for (const [width, height] of SIZES) console.log(`  ${width}x${height}: ${renderCost(width, height).toFixed(2)} ms`);

  console.log('unpaced (fps 0), frames per second read back to back');
  for (const [width, height] of SIZES) {
    const camera = await unpacedRate(new FakeCamera({ width, height, fps: 0 }));
    const pregenerated = await unpacedRate(new PregeneratedSource({ width, height, fps: 0, distinctFrames: 10 }));
    console.log(`  ${width}x${height}: FakeCamera ${camera.toFixed(0)} fps, PregeneratedSource ${pregenerated.toFixed(0)} fps`);
  }

  console.log('FakeCamera paced, 320x240 over 2 s');
  for (const fps of [30, 50]) {
    const paced = await pacedFigures(fps);
    console.log(`  asked ${fps} fps: reached ${paced.fps.toFixed(1)} fps, latest frame ${paced.worstLateMs.toFixed(1)} ms after its time`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
