/*
 * H.264 settings against JPEG q80, on the OpenCV test pattern and the synthetic clip, 1280x720 at 30 fps:
 *   CAMSTREAM_SHARED=/work/shared npx ts-node -P packages/ffmpeg/tsconfig.json packages/ffmpeg/bench/h264-bench.ts [frames | keyframes]
 * Per setting: bitrate at 30 fps; mean SSIM against the source frames (OpenCV; Wang et al. 2004:
 * 11x11 Gaussian window, sigma 1.5, on the luma Y of BT.601, every 5th frame); encode latency
 * (frame written to ffmpeg -> its access unit back) and decode latency (access unit written ->
 * whole BGR picture back), p50/p99 after the first frame; and the encoder's CPU: user + system
 * time of its ffmpeg process per second of video. Frames are paced at 30 fps like a camera, each
 * encoded then decoded at once. Then what a keyframe on request costs (requestKeyframe).
 * H264_BENCH_ONLY="ultrafast 4 Mbit/s" (names separated by ";") runs only those settings beside
 * JPEG, without the keyframe requests (packages/bench/src/h264-apps.ts reads its SSIM so).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { RawImage } from '@camstream/media';
import { loadOpenCV, openSource, OpenCVCodec, type OpenCV } from '@camstream/opencv';
import { H264Decoder } from '../src/h264-decoder';
import { H264Encoder, type H264EncoderOptions } from '../src/h264-encoder';

const WIDTH = 1280;
const HEIGHT = 720;
const FPS = 30;
/** `h264-bench.ts keyframes` measures only what a keyframe request costs. */
const ONLY_KEYFRAMES = process.argv[2] === 'keyframes';
const FRAMES = ONLY_KEYFRAMES ? 0 : Number(process.argv[2] ?? 150);
const SSIM_EVERY = 5;

interface Setting {
  name: string;
  options: Partial<H264EncoderOptions>;
}

const ALL_SETTINGS: Setting[] = [
  { name: 'ultrafast crf 23', options: { x264Preset: 'ultrafast', crf: 23 } },
  { name: 'ultrafast crf 21', options: { x264Preset: 'ultrafast', crf: 21 } },
  { name: 'ultrafast crf 19', options: { x264Preset: 'ultrafast', crf: 19 } },
  { name: 'ultrafast crf 21 cap 6M', options: { x264Preset: 'ultrafast', crf: 21, maxBitrateKbps: 6000 } },
  { name: 'ultrafast 4 Mbit/s', options: { x264Preset: 'ultrafast', bitrateKbps: 4000 } },
  { name: 'superfast crf 21', options: { x264Preset: 'superfast', crf: 21 } },
  { name: 'veryfast crf 21', options: { x264Preset: 'veryfast', crf: 21 } },
];

const ONLY = process.env['H264_BENCH_ONLY']?.split(';').map((name) => name.trim());
const SETTINGS = ONLY ? ALL_SETTINGS.filter((setting) => ONLY.includes(setting.name)) : ALL_SETTINGS;
if (ONLY && SETTINGS.length !== ONLY.length) {
  throw new Error(`H264_BENCH_ONLY=${JSON.stringify(process.env['H264_BENCH_ONLY'])}: expected names among ${ALL_SETTINGS.map((setting) => JSON.stringify(setting.name)).join(', ')}`);
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN;
};

/** utime + stime of a process, in seconds (from /proc, clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

class Ssim {
  private readonly c1: ReturnType<OpenCV['Mat']['prototype']['mul']>;
  private readonly c2: ReturnType<OpenCV['Mat']['prototype']['mul']>;

  constructor(private readonly cv: OpenCV) {
    this.c1 = new cv.Mat(HEIGHT, WIDTH, cv.CV_32F, (0.01 * 255) ** 2);
    this.c2 = new cv.Mat(HEIGHT, WIDTH, cv.CV_32F, (0.03 * 255) ** 2);
  }

  /** Mean SSIM of the luma of two BGR images. */
  of(a: RawImage, b: RawImage): number {
    const { cv } = this;
    const luma = (image: RawImage) => new cv.Mat(image.data, image.height, image.width, cv.CV_8UC3).cvtColor(cv.COLOR_BGR2GRAY).convertTo(cv.CV_32F);
    const blur = (mat: ReturnType<typeof luma>) => mat.gaussianBlur(new cv.Size(11, 11), 1.5);
    const x = luma(a);
    const y = luma(b);
    const muX = blur(x);
    const muY = blur(y);
    const muXX = muX.hMul(muX);
    const muYY = muY.hMul(muY);
    const muXY = muX.hMul(muY);
    const varX = blur(x.hMul(x)).sub(muXX);
    const varY = blur(y.hMul(y)).sub(muYY);
    const covariance = blur(x.hMul(y)).sub(muXY);
    const numerator = muXY.mul(2).add(this.c1).hMul(covariance.mul(2).add(this.c2));
    const denominator = muXX.add(muYY).add(this.c1).hMul(varX.add(varY).add(this.c2));
    return numerator.hDiv(denominator).mean().w;
  }
}

/** The synthetic clip (30 frames that synth.py draws), written once into the system's temp directory. */
function loadSyntheticClip(): RawImage[] {
  const shared = process.env['CAMSTREAM_SHARED'] ?? path.resolve(__dirname, '../../../../shared');
  const script = path.join(shared, 'peers', 'synth.py');
  if (!existsSync(script)) throw new Error(`${script} not found: set CAMSTREAM_SHARED to the shared folder`);
  const directory = path.join(tmpdir(), 'camstream-h264-bench');
  const file = path.join(directory, `${WIDTH}x${HEIGHT}.bgr`);
  const frameBytes = WIDTH * HEIGHT * 3;
  if (!existsSync(file) || statSync(file).size !== 30 * frameBytes) {
    mkdirSync(directory, { recursive: true });
    execFileSync(process.env['CAMSTREAM_PYTHON'] ?? '/usr/bin/python3', [script, directory, String(WIDTH), String(HEIGHT), '30'], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const bytes = readFileSync(file);
  return [...Array(bytes.length / frameBytes).keys()].map((i) => ({ width: WIDTH, height: HEIGHT, channels: 3, data: bytes.subarray(i * frameBytes, (i + 1) * frameBytes) }));
}

async function loadTestPattern(count: number): Promise<RawImage[]> {
  const source = await openSource('test', { width: WIDTH, height: HEIGHT, fps: 0 });
  const frames: RawImage[] = [];
  for (let i = 0; i < count; i++) {
    const image = (await source.read())!.image;
    frames.push({ ...image, data: Buffer.from(image.data) });
  }
  await source.close();
  return frames;
}

interface Row {
  source: string;
  setting: string;
  mbits: number;
  ssim: number;
  encode: number[];
  decode: number[];
  cpu: number | undefined;
  startupMs: number | undefined;
}

async function jpegRow(source: string, frames: RawImage[], ssim: Ssim): Promise<Row> {
  const codec = new OpenCVCodec();
  let bytes = 0;
  const scores: number[] = [];
  const encode: number[] = [];
  const decode: number[] = [];
  for (let i = 0; i < FRAMES; i++) {
    const frame = frames[i % frames.length]!;
    let start = performance.now();
    const jpeg = await codec.encode(frame, 'jpeg', { quality: 80 });
    encode.push(performance.now() - start);
    bytes += jpeg.length;
    start = performance.now();
    const decoded = await codec.decode(jpeg, 'jpeg', { width: WIDTH, height: HEIGHT, channels: 3 });
    decode.push(performance.now() - start);
    if (i % SSIM_EVERY === 0) scores.push(ssim.of(frame, decoded));
  }
  return { source, setting: 'JPEG q80 (OpenCV)', mbits: (bytes * 8 * FPS) / FRAMES / 1e6, ssim: mean(scores), encode, decode, cpu: undefined, startupMs: undefined };
}

const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;

async function h264Row(source: string, frames: RawImage[], setting: Setting, ssim: Ssim): Promise<Row> {
  const encoder = new H264Encoder({ width: WIDTH, height: HEIGHT, fps: FPS, keepSpareProcess: false, ...setting.options });
  const decoder = new H264Decoder({ width: WIDTH, height: HEIGHT });
  const pid = encoder.processIds[0]!;
  const encode: number[] = [];
  const decode: number[] = [];
  const kept: Array<[RawImage, RawImage]> = [];
  let bytes = 0;
  let cpuStart = 0;
  let startupMs: number | undefined;
  const startedAt = performance.now();
  try {
    for (let i = 0; i < FRAMES; i++) {
      const due = startedAt + (i * 1000) / FPS;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      const frame = frames[i % frames.length]!;
      const unit = await encoder.encode(frame);
      const picture = await decoder.decode(unit.data, i % SSIM_EVERY === 0 ? Buffer.allocUnsafe(WIDTH * HEIGHT * 3) : undefined);
      bytes += unit.data.length;
      if (i === 0) {
        startupMs = unit.encodeMs + picture.decodeMs;
        cpuStart = cpuSeconds(pid);
      } else {
        encode.push(unit.encodeMs);
        decode.push(picture.decodeMs);
      }
      if (i % SSIM_EVERY === 0) kept.push([frame, picture.image]);
    }
    const cpu = (cpuSeconds(pid) - cpuStart) / ((FRAMES - 1) / FPS);
    const scores = kept.map(([original, decoded]) => ssim.of(original, decoded));
    return { source, setting: setting.name, mbits: (bytes * 8 * FPS) / FRAMES / 1e6, ssim: mean(scores), encode, decode, cpu, startupMs };
  } finally {
    await encoder.close();
    await decoder.close();
  }
}

/** What requestKeyframe() costs: encode time of the frames right after a request, with and without a spare process. */
async function keyframeRequestCost(frames: RawImage[], keepSpareProcess: boolean): Promise<string> {
  const encoder = new H264Encoder({ width: WIDTH, height: HEIGHT, fps: FPS, keepSpareProcess });
  const requested: number[] = [];
  const normal: number[] = [];
  const keyframeBytes: number[] = [];
  const otherBytes: number[] = [];
  try {
    const startedAt = performance.now();
    // A request every 1.5 s: the spare process started at the last one has loaded by then.
    for (let i = 0; i < 180; i++) {
      const wait = startedAt + (i * 1000) / FPS - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      const request = i > 0 && i % 45 === 0;
      if (request) encoder.requestKeyframe();
      const unit = await encoder.encode(frames[i % frames.length]!);
      if (request) requested.push(unit.encodeMs);
      else if (i > 0) normal.push(unit.encodeMs);
      (unit.keyframe ? keyframeBytes : otherBytes).push(unit.data.length);
    }
  } finally {
    await encoder.close();
  }
  return `requested keyframe ${keepSpareProcess ? 'with a spare process' : 'cold (no spare)'}: encode p50 ${percentile(requested, 50).toFixed(1)} ms, max ${Math.max(...requested).toFixed(1)} ms (other frames p50 ${percentile(normal, 50).toFixed(1)} ms); keyframe ${(mean(keyframeBytes) / 1024).toFixed(0)} KiB vs other ${(mean(otherBytes) / 1024).toFixed(1)} KiB`;
}

async function main(): Promise<void> {
  if (ONLY_KEYFRAMES) {
    const clip = loadSyntheticClip();
    console.log(await keyframeRequestCost(clip, true));
    console.log(await keyframeRequestCost(clip, false));
    return;
  }
  const cv = loadOpenCV();
  const ssim = new Ssim(cv);
  const sources: Array<[string, RawImage[]]> = [
    ['test pattern', await loadTestPattern(60)],
    ['synthetic clip', loadSyntheticClip()],
  ];
  const rows: Row[] = [];
  for (const [source, frames] of sources) {
    rows.push(await jpegRow(source, frames, ssim));
    for (const setting of SETTINGS) {
      rows.push(await h264Row(source, frames, setting, ssim));
      console.error(`done: ${source}, ${setting.name}`);
    }
  }
  const header = ['source', 'setting', 'Mbit/s', '% of JPEG', 'SSIM (Y)', 'enc p50/p99 ms', 'dec p50/p99 ms', 'enc+dec p50/p99', 'encoder CPU (cores)', 'first frame ms'];
  const table = [header, header.map(() => '---')];
  for (const row of rows) {
    const jpeg = rows.find((candidate) => candidate.source === row.source)!;
    const both = row.encode.map((value, i) => value + row.decode[i]!);
    table.push([
      row.source,
      row.setting,
      row.mbits.toFixed(2),
      `${((100 * row.mbits) / jpeg.mbits).toFixed(0)} %`,
      row.ssim.toFixed(4),
      `${percentile(row.encode, 50).toFixed(1)} / ${percentile(row.encode, 99).toFixed(1)}`,
      `${percentile(row.decode, 50).toFixed(1)} / ${percentile(row.decode, 99).toFixed(1)}`,
      `${percentile(both, 50).toFixed(1)} / ${percentile(both, 99).toFixed(1)}`,
      row.cpu === undefined ? '-' : row.cpu.toFixed(2),
      row.startupMs === undefined ? '-' : row.startupMs.toFixed(0),
    ]);
  }
  console.log(`${WIDTH}x${HEIGHT} at ${FPS} fps, ${FRAMES} frames per row`);
  for (const line of table) console.log(`| ${line.join(' | ')} |`);
  if (ONLY) return;
  const clip = sources[1]![1];
  console.log(await keyframeRequestCost(clip, true));
  console.log(await keyframeRequestCost(clip, false));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
