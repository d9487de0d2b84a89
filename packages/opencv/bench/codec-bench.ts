/*
 * Costs of the adapter's hot paths on test-pattern frames, at 1280x720 and 1920x1080:
 *   npx ts-node -P packages/opencv/tsconfig.json packages/opencv/bench/codec-bench.ts
 * For each operation: the median wall time of one call (calls run one at a time), and the
 * main thread's busy time per call (event-loop utilisation over all calls): for the async
 * operations the rest of the work runs on OpenCV's threads or, for the recorder, in its child.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RawImage } from '@camstream/media';
import { OpenCVCodec } from '../src/codec';
import { imageFromMat, wrapImage } from '../src/images';
import { loadOpenCV } from '../src/load-opencv';
import { openRecorder } from '../src/recorder';
import { TestPatternSource } from '../src/test-pattern';

interface Cost {
  wallMs: number;
  mainThreadMs: number;
}

async function measure(runs: number, step: () => unknown): Promise<Cost> {
  const times: number[] = [];
  await step(); // warm-up
  const before = performance.eventLoopUtilization();
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await step();
    times.push(performance.now() - start);
  }
  const busy = performance.eventLoopUtilization(before);
  times.sort((a, b) => a - b);
  return { wallMs: times[Math.floor(times.length / 2)]!, mainThreadMs: busy.active / runs };
}

async function main(): Promise<void> {
  const cv = loadOpenCV();
  const codec = new OpenCVCodec();
  const directory = mkdtempSync(join(tmpdir(), 'camstream-bench-'));
  const rows: string[][] = [['operation (ms per call)', '720p wall', '720p main', '1080p wall', '1080p main']];
  const results = new Map<string, string[]>();
  const record = (name: string, cost: Cost) => {
    if (!results.has(name)) results.set(name, []);
    results.get(name)!.push(cost.wallMs.toFixed(2), cost.mainThreadMs.toFixed(2));
  };
  try {
    for (const [width, height] of [[1280, 720], [1920, 1080]] as const) {
      const pattern = new TestPatternSource(width, height, 0);
      const frames: RawImage[] = [];
      for (let i = 0; i < 8; i++) frames.push((await pattern.read())!.image);
      let n = 0;
      const next = () => frames[n++ % frames.length]!;
      const jpeg = await codec.encode(frames[0]!, 'jpeg');
      const png = await codec.encode(frames[0]!, 'png');
      const shape = { width, height, channels: 3 };
      const mat = wrapImage(frames[0]!);

      record('test pattern frame (render)', await measure(40, () => pattern.read()));
      record('encode raw-bgr (passthrough)', await measure(40, () => codec.encode(next(), 'raw-bgr')));
      record('encode jpeg q80', await measure(40, () => codec.encode(next(), 'jpeg', { quality: 80 })));
      record('encode png', await measure(15, () => codec.encode(next(), 'png')));
      record('decode raw-bgr (wrap)', await measure(40, () => codec.decode(next().data, 'raw-bgr', shape)));
      record('decode jpeg (libjpeg-turbo, into the Buffer)', await measure(40, () => codec.decode(jpeg, 'jpeg', shape)));
      record('decode jpeg, OpenCV imdecodeAsync (not used)', await measure(40, async () => (await cv.imdecodeAsync(jpeg, cv.IMREAD_COLOR)).release()));
      record('decode png (incl. copy out)', await measure(15, () => codec.decode(png, 'png', shape)));
      record('mat.getData()', await measure(40, () => mat.getData()));
      record('mat.getDataAsync()', await measure(40, () => mat.getDataAsync()));
      record('copy out: copyTo wrapped Buffer', await measure(40, () => imageFromMat(mat)));
      record('new cv.Mat(buffer, rows, cols, type)', await measure(40, () => new cv.Mat(frames[0]!.data, height, width, cv.CV_8UC3)));
      record('new cv.Mat(rows, cols, type, buffer) wrap', await measure(40, () => wrapImage(next())));
      const writer = new cv.VideoWriter(join(directory, `sync-${width}.avi`), cv.VideoWriter.fourcc('MJPG'), 30, new cv.Size(width, height));
      record('VideoWriter.write MJPG (sync, blocks)', await measure(30, () => writer.write(wrapImage(next()))));
      writer.release();
      const recorder = await openRecorder(join(directory, `rec-${width}.avi`), { fps: 30, width, height });
      record('VideoRecorder.write (child process)', await measure(30, () => recorder.write(next())));
      await recorder.close();
      console.error(`jpeg q80 ${width}x${height}: ${jpeg.length} bytes, png: ${png.length} bytes`);
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
  for (const [name, values] of results) rows.push([name, ...values]);
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  for (const row of rows) console.log(row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  '));
}

void main();
