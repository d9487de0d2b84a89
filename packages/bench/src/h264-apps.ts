/*
 * Issue 13's H.264 targets through the real apps: camstream-sender and camstream-receiver (their
 * bundled launchers), each a separate process, over loopback TCP, 1280x720 at 30 fps, on the test
 * pattern and on synth.py's clip (played from a lossless AVI, looped). Per source and codec
 * (H.264 at --bitrate 4M, JPEG q80), each cell run --repeat times:
 *
 *   - receiver A connects; 5 s after it, receiver B joins (the late joiner): B's first picture, from
 *     its "first picture N ms after connecting" line; B leaves after --joiner-duration seconds;
 *   - then the measured window, one receiver (A) again: A's --stats-json lines over it (Mbit/s,
 *     fps, capture-to-decoded latency) and the sender's CPU (node and its ffmpeg children, from
 *     /proc). It starts 1 s after B left, so long after A's first second (its catch-up GOP);
 *   - then one H.264 cell through the chaos proxy at 55 % of the synthetic clip's measured H.264
 *     bitrate, --delay 10 (20 ms round trip), 30 s: p99 over its last 10 s, fps, drops, rungs.
 *
 * SSIM comes from the encoder bench (packages/ffmpeg/bench/h264-bench.ts) with the sender's
 * setting, not from the apps. Latency per window: the median of the once-a-second p50s and the
 * worst second's p99 (the window's largest latency with ~30 frames a second: an upper bound of
 * its p99, which the target is judged on).
 *
 *   npx nx run bench:h264                             about 7 minutes
 *   npx nx run bench:h264 -- --repeat 3 --no-ssim --no-slow-link
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { H264Decoder, H264Encoder } from '@camstream/ffmpeg';
import { startApp, startProcess, stopAllProcesses, workspaceRoot, type AppProcess } from '@camstream/testkit';
import { CLIP_FRAMES, sharedDir } from './frames';
import { waitForQuiet } from './machine-load';
import { coresBetween, sampleTree } from './process-cpu';
import { median } from './report';

const WIDTH = 1280;
const HEIGHT = 720;
const FPS = 30;
/** The sender's H.264 bitrate here, and the encoder bench's setting with the same options. */
const H264_BITRATE = '4M';
const H264_BENCH_SETTING = 'ultrafast 4 Mbit/s';

const TARGETS = {
  bitrateShareOfJpeg: 0.4,
  p50Ms: 40,
  p99Ms: 80,
  senderCores: 0.3,
  firstPictureMs: 200,
  slowLinkShare: 0.55,
  slowLinkP99Ms: 150,
};

type Codec = 'h264' | 'jpeg';
type SourceName = 'test pattern' | 'synthetic clip';

interface Interval {
  endMs: number;
  seconds: number;
  fps: number;
  decodedFps: number;
  mbps: number;
  latencyMs: { p50: number; p95: number; p99: number } | null;
  senderDropped: number;
  skipped: number;
  rung: { index: number } | null;
}

interface WindowFigures {
  seconds: number;
  fps: number;
  decodedFps: number;
  mbps: number;
  p50: number;
  p99: number;
  /** Median of the seconds' p99, to read the worst one against. */
  p99Median: number;
  droppedBySender: number;
  skipped: number;
  /** Seconds spent on each rung (by the rung of each second's last frame). */
  rungs: Record<string, number>;
  /** Each second: "rung:p99" (to see whether the worst seconds follow rung changes). */
  perSecond: string[];
}

interface LoopbackRun {
  source: SourceName;
  codec: Codec;
  run: number;
  load1: { start: number; end: number };
  /** Other programs' CPU just before, % of one core. */
  backgroundPercent: number | undefined;
  window: WindowFigures;
  senderCores: number;
  /** The sender's node process alone (the rest: its ffmpeg encoders). */
  senderNodeCores: number;
  senderProcesses: string[];
  senderEncodeMs: number;
  joiner: {
    firstPictureMs: number | undefined;
    /** From its "connected to" line (the handshake is over) to its "first picture" line, as the bench read them. */
    handshakeToFirstPictureMs: number | undefined;
    spawnToFirstPictureMs: number | undefined;
    afterFirstSecond: WindowFigures | undefined;
  };
}

interface SlowLinkRun {
  run: number;
  rateKbit: number;
  load1: { start: number; end: number };
  backgroundPercent: number | undefined;
  lastSeconds: WindowFigures;
  whole: WindowFigures;
}

interface SsimRow {
  source: SourceName;
  setting: string;
  mbits: number;
  ssim: number;
  /** The encoder bench's encode and decode latency of one frame, "p50 / p99" ms. */
  encodeMs: string;
  decodeMs: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const load1 = () => Math.round(loadavg()[0]! * 100) / 100;
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      repeat: { type: 'string', default: '2' },
      window: { type: 'string', default: '12' },
      'join-after': { type: 'string', default: '5' },
      'joiner-duration': { type: 'string', default: '6' },
      'slow-link-duration': { type: 'string', default: '30' },
      'no-slow-link': { type: 'boolean', default: false },
      'no-ssim': { type: 'boolean', default: false },
      'quiet-below': { type: 'string', default: '25' },
      'max-wait': { type: 'string', default: '30' },
      python: { type: 'string', default: '/usr/bin/python3' },
      'frames-dir': { type: 'string', default: path.join(tmpdir(), 'camstream-bench-h264-frames') },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'Usage: npx nx run bench:h264 [-- --repeat N] [--window S] [--join-after S] [--joiner-duration S] [--slow-link-duration S]\n' +
        '       [--no-slow-link] [--no-ssim] [--quiet-below PERCENT] [--max-wait S] [--python PATH] [--frames-dir DIR]\n',
    );
    return;
  }
  const number = (name: keyof typeof values, min: number) => {
    const value = Number(values[name]);
    if (!(value >= min)) throw new Error(`--${name} ${JSON.stringify(values[name])}: expected a number >= ${min}`);
    return value;
  };
  const settings = {
    repeat: number('repeat', 1),
    windowS: number('window', 3),
    joinAfterS: number('join-after', 1),
    joinerDurationS: number('joiner-duration', 3),
    slowLinkS: number('slow-link-duration', 12),
    quietBelow: number('quiet-below', 0),
    maxWaitS: number('max-wait', 0),
  };
  const cores = cpus().length;

  // The launchers run the bundles: make them match the sources.
  execFileSync(process.execPath, [path.join(workspaceRoot, 'scripts', 'bundle-apps.js')], { stdio: ['ignore', 'ignore', 'inherit'] });
  const framesDir = values['frames-dir'];
  mkdirSync(framesDir, { recursive: true });
  const clip = clipVideo(values.python, framesDir);
  const sources: Record<SourceName, string[]> = {
    'test pattern': ['--source', 'test'],
    'synthetic clip': ['--source', clip, '--loop'],
  };

  const loopback: LoopbackRun[] = [];
  for (let run = 1; run <= settings.repeat; run++) {
    for (const source of Object.keys(sources) as SourceName[]) {
      for (const codec of ['h264', 'jpeg'] as Codec[]) {
        const backgroundPercent = await waitForQuiet(settings.quietBelow, settings.maxWaitS * 1000, cores);
        progress(`run ${run}: ${source}, ${codec} (load ${load1()}, others ${backgroundPercent ?? '?'} % of a core)`);
        const result = await loopbackCell(source, codec, run, sources[source], settings, backgroundPercent);
        progress(`  ${JSON.stringify(result)}`);
        loopback.push(result);
      }
    }
  }

  await waitForQuiet(settings.quietBelow, settings.maxWaitS * 1000, cores);
  progress(`decoder start-up (load ${load1()})`);
  const startup = await decoderStartup();
  progress(`  ${JSON.stringify(startup)}`);

  const slowLink: SlowLinkRun[] = [];
  if (!values['no-slow-link']) {
    const measured = median(loopback.filter((r) => r.source === 'synthetic clip' && r.codec === 'h264').map((r) => r.window.mbps));
    const rateKbit = Math.round(measured * 1000 * TARGETS.slowLinkShare);
    for (let run = 1; run <= settings.repeat; run++) {
      const backgroundPercent = await waitForQuiet(settings.quietBelow, settings.maxWaitS * 1000, cores);
      progress(`run ${run}: slow link ${rateKbit} kbit/s (load ${load1()})`);
      const result = await slowLinkCell(sources['synthetic clip'], rateKbit, run, settings.slowLinkS, backgroundPercent);
      progress(`  ${JSON.stringify(result)}`);
      slowLink.push(result);
    }
  }

  let ssim: SsimRow[] = [];
  let ssimLoad: number | undefined;
  if (!values['no-ssim']) {
    await waitForQuiet(settings.quietBelow, settings.maxWaitS * 1000, cores);
    ssimLoad = load1();
    progress(`SSIM: the encoder bench, JPEG q80 and ${H264_BENCH_SETTING} (load ${ssimLoad})`);
    ssim = encoderBenchSsim(sharedDir(workspaceRoot));
  }

  const markdown = report(loopback, slowLink, ssim, ssimLoad, startup, settings);
  process.stdout.write(markdown);
  const out = path.join(workspaceRoot, 'bench-results');
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'h264.md'), markdown);
  writeFileSync(path.join(out, 'h264.json'), `${JSON.stringify({ settings, targets: TARGETS, loopback, decoderStartup: startup, slowLink, ssim, ssimLoad }, null, 1)}\n`);
  progress(`written: ${path.relative(workspaceRoot, path.join(out, 'h264.md'))} and h264.json`);
}

function progress(line: string): void {
  process.stderr.write(`[bench:h264] ${line}\n`);
}

/** synth.py's 30 frames at 1280x720 as a lossless AVI (raw BGR), which the sender plays looped. */
function clipVideo(python: string, dir: string): string {
  const raw = path.join(dir, `${WIDTH}x${HEIGHT}.bgr`);
  const video = path.join(dir, `${WIDTH}x${HEIGHT}.avi`);
  const synth = path.join(workspaceRoot, 'packages', 'tutorial-wire', 'fixtures', 'synth.py');
  if (!existsSync(raw)) execFileSync(python, [synth, dir, String(WIDTH), String(HEIGHT), String(CLIP_FRAMES)], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (!existsSync(video)) {
    execFileSync('ffmpeg', ['-loglevel', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'bgr24', '-s', `${WIDTH}x${HEIGHT}`, '-r', String(FPS), '-i', raw, '-c:v', 'rawvideo', '-pix_fmt', 'bgr24', video]);
  }
  return video;
}

interface DecoderStartup {
  load1: number;
  /** `ffmpeg -version`: starting the program alone, wall ms, each try. */
  ffmpegVersionMs: number[];
  /** new H264Decoder (ffmpeg started) and its first 720p keyframe decoded, wall ms, each try. */
  newDecoderFirstPictureMs: number[];
  /** The same decoder's next keyframe, wall ms, each try. */
  nextKeyframeMs: number[];
}

/** What the receiver's H.264 decoder costs before its first picture: ffmpeg's start and its first keyframe. */
async function decoderStartup(tries = 5): Promise<DecoderStartup> {
  const loadNow = load1();
  const ffmpegVersionMs: number[] = [];
  for (let i = 0; i < tries; i++) {
    const start = performance.now();
    execFileSync('ffmpeg', ['-version'], { stdio: 'ignore' });
    ffmpegVersionMs.push(Math.round(performance.now() - start));
  }
  const image = { width: WIDTH, height: HEIGHT, channels: 3 as const, data: Buffer.alloc(WIDTH * HEIGHT * 3, 128) };
  const encoder = new H264Encoder({ width: WIDTH, height: HEIGHT, fps: FPS, bitrateKbps: 4000, keepSpareProcess: false });
  const keyframe = await encoder.encode(image);
  await encoder.close();
  const newDecoderFirstPictureMs: number[] = [];
  const nextKeyframeMs: number[] = [];
  for (let i = 0; i < tries; i++) {
    const start = performance.now();
    const decoder = new H264Decoder({ width: WIDTH, height: HEIGHT });
    try {
      await decoder.decode(keyframe.data);
      const first = performance.now();
      await decoder.decode(keyframe.data);
      newDecoderFirstPictureMs.push(Math.round(first - start));
      nextKeyframeMs.push(Math.round(performance.now() - first));
    } finally {
      await decoder.close();
    }
  }
  return { load1: loadNow, ffmpegVersionMs, newDecoderFirstPictureMs, nextKeyframeMs };
}

function startSender(sourceArgs: string[], codec: Codec): AppProcess {
  return startApp('sender', [
    ...sourceArgs,
    '--size', `${WIDTH}x${HEIGHT}`,
    '--fps', String(FPS),
    '--port', '0',
    '--codec', codec,
    ...(codec === 'h264' ? ['--bitrate', H264_BITRATE] : ['--quality', '80']),
    '--stats-json',
  ]);
}

function startReceiver(address: string, durationS: number): AppProcess {
  return startApp('receiver', [address, '--display', 'off', '--stats-json', '--no-reconnect', '--duration', String(durationS)], {
    env: { DISPLAY: undefined, WAYLAND_DISPLAY: undefined },
  });
}

async function listeningPort(sender: AppProcess): Promise<number> {
  const line = await sender.waitForLine(/^LISTENING AT: /, { stream: 'stdout', timeoutMs: 60_000 });
  return Number(line.slice(line.lastIndexOf(':') + 1));
}

async function firstPictureMs(receiver: AppProcess, timeoutMs: number): Promise<number> {
  const line = await receiver.waitForLine(/first picture \d+ ms after connecting/, { stream: 'stderr', timeoutMs });
  return Number(/first picture (\d+) ms/.exec(line)![1]);
}

async function loopbackCell(
  source: SourceName,
  codec: Codec,
  run: number,
  sourceArgs: string[],
  settings: { windowS: number; joinAfterS: number; joinerDurationS: number },
  backgroundPercent: number | undefined,
): Promise<LoopbackRun> {
  const loadStart = load1();
  const sender = startSender(sourceArgs, codec);
  try {
    const port = await listeningPort(sender);
    // A runs until the window is over: the join, B's stay, a second, the window and a margin.
    const totalS = settings.joinAfterS + settings.joinerDurationS + 3 + settings.windowS + 2;
    const first = startReceiver(`127.0.0.1:${port}`, totalS);
    const firstStarted = performance.now();
    await firstPictureMs(first, 30_000);
    await sleep(firstStarted + settings.joinAfterS * 1000 - performance.now());
    const joiner = startReceiver(`127.0.0.1:${port}`, settings.joinerDurationS);
    const joinerSpawned = performance.now();
    const handshakeAt = joiner.waitForLine(/connected to /, { stream: 'stderr', timeoutMs: 30_000 }).then(() => performance.now());
    handshakeAt.catch(() => undefined);
    let joinerFirst: number | undefined;
    let spawnToFirst: number | undefined;
    let handshakeToFirst: number | undefined;
    try {
      joinerFirst = await firstPictureMs(joiner, 30_000);
      const pictureAt = performance.now();
      spawnToFirst = pictureAt - joinerSpawned;
      handshakeToFirst = pictureAt - (await handshakeAt);
    } catch {
      // reported as missing
    }
    await joiner.waitForExit(30_000);
    await sleep(1000);
    const before = sampleTree(sender.pid);
    const windowStart = Date.now();
    await sleep(settings.windowS * 1000);
    const after = sampleTree(sender.pid);
    const windowEnd = Date.now();
    const loadEnd = load1();
    await first.waitForExit(30_000);
    const intervals = receiverIntervals(first);
    const joinerIntervals = receiverIntervals(joiner);
    const joinerFirstEnd = joinerIntervals.find((i) => i.decodedFps > 0)?.endMs;
    return {
      source,
      codec,
      run,
      load1: { start: loadStart, end: loadEnd },
      backgroundPercent,
      window: windowFigures(intervals, windowStart, windowEnd),
      senderCores: round(coresBetween(before, after), 3),
      senderNodeCores: round(coresBetween(before, after, (pid) => pid === sender.pid), 3),
      senderProcesses: after.names,
      senderEncodeMs: senderEncodeMs(sender, windowStart, windowEnd),
      joiner: {
        firstPictureMs: joinerFirst,
        handshakeToFirstPictureMs: handshakeToFirst === undefined ? undefined : Math.round(handshakeToFirst),
        spawnToFirstPictureMs: spawnToFirst === undefined ? undefined : Math.round(spawnToFirst),
        // B's seconds after the one its first picture came in, and one more (its catch-up GOP).
        afterFirstSecond: joinerFirstEnd === undefined ? undefined : windowFigures(joinerIntervals, joinerFirstEnd + 1000, Infinity, true),
      },
    };
  } finally {
    await stopAllProcesses();
  }
}

async function slowLinkCell(sourceArgs: string[], rateKbit: number, run: number, durationS: number, backgroundPercent: number | undefined): Promise<SlowLinkRun> {
  const loadStart = load1();
  const sender = startSender(sourceArgs, 'h264');
  try {
    const port = await listeningPort(sender);
    const proxy = startProcess(path.join(workspaceRoot, 'packages', 'testkit', 'bin', 'chaos-proxy'), ['--target', `127.0.0.1:${port}`, '--rate', `${rateKbit}kbit`, '--delay', '10'], {
      name: 'chaos-proxy',
    });
    const listening = await proxy.waitForLine(/^LISTENING AT: /, { stream: 'stdout', timeoutMs: 30_000 });
    const receiver = startReceiver(listening.slice('LISTENING AT: '.length).trim(), durationS);
    await receiver.waitForExit((durationS + 30) * 1000);
    const loadEnd = load1();
    const intervals = receiverIntervals(receiver);
    const end = intervals.at(-1)?.endMs ?? Date.now();
    return {
      run,
      rateKbit,
      load1: { start: loadStart, end: loadEnd },
      backgroundPercent,
      lastSeconds: windowFigures(intervals, end - 10_500, Infinity, true),
      whole: windowFigures(intervals, 0, Infinity, true),
    };
  } finally {
    await stopAllProcesses();
  }
}

function receiverIntervals(receiver: AppProcess): Interval[] {
  const intervals: Interval[] = [];
  for (const line of receiver.stdoutLines) {
    if (!line.startsWith('{')) continue;
    const parsed = JSON.parse(line) as Omit<Interval, 'endMs'> & { kind: string; time: string };
    if (parsed.kind !== 'interval') continue;
    intervals.push({ ...parsed, endMs: Date.parse(parsed.time) });
  }
  return intervals;
}

/**
 * A receiver's once-a-second lines that lie within [startMs, endMs] (each covers the `seconds`
 * before its time). `partial`: a line may end after endMs (the run's last ones).
 */
function windowFigures(all: Interval[], startMs: number, endMs: number, partial = false): WindowFigures {
  const previous = [...all].reverse().find((i) => i.endMs - i.seconds * 1000 < startMs);
  const lines = all.filter((i) => i.endMs - i.seconds * 1000 >= startMs - 50 && (partial || i.endMs <= endMs + 50));
  const seconds = lines.reduce((sum, i) => sum + i.seconds, 0);
  const rate = (key: 'fps' | 'decodedFps' | 'mbps') => (seconds > 0 ? round(lines.reduce((sum, i) => sum + i[key] * i.seconds, 0) / seconds, 2) : NaN);
  const latencies = lines.map((i) => i.latencyMs).filter((l): l is NonNullable<Interval['latencyMs']> => l !== null);
  const rungs: Record<string, number> = {};
  for (const i of lines) {
    const key = i.rung ? String(i.rung.index) : '-';
    rungs[key] = round((rungs[key] ?? 0) + i.seconds, 1);
  }
  const last = lines.at(-1);
  return {
    seconds: round(seconds, 1),
    fps: rate('fps'),
    decodedFps: rate('decodedFps'),
    mbps: rate('mbps'),
    p50: round(median(latencies.map((l) => l.p50))),
    p99: latencies.length ? round(Math.max(...latencies.map((l) => l.p99))) : NaN,
    p99Median: round(median(latencies.map((l) => l.p99))),
    droppedBySender: last ? last.senderDropped - (previous?.senderDropped ?? 0) : 0,
    skipped: last ? last.skipped - (previous?.skipped ?? 0) : 0,
    rungs,
    perSecond: lines.map((i) => `${i.rung?.index ?? '-'}:${i.latencyMs ? Math.round(i.latencyMs.p99) : '-'}`),
  };
}

/** The sender's mean encode time (capture to encoded, its stats lines) over the window. */
function senderEncodeMs(sender: AppProcess, startMs: number, endMs: number): number {
  const values: number[] = [];
  for (const line of sender.stdoutLines) {
    if (!line.startsWith('{')) continue;
    const parsed = JSON.parse(line) as { kind: string; time: string; encodeMs: number; fps: number };
    const at = Date.parse(parsed.time);
    if (parsed.kind === 'interval' && at > startMs + 500 && at <= endMs + 500 && parsed.fps > 0) values.push(parsed.encodeMs);
  }
  return values.length ? round(values.reduce((a, b) => a + b, 0) / values.length, 2) : NaN;
}

/** The encoder bench's JPEG q80 and sender-setting rows (bitrate, SSIM) for both sources. */
function encoderBenchSsim(shared: string): SsimRow[] {
  const output = execFileSync(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(workspaceRoot, 'packages', 'ffmpeg', 'bench', 'h264-bench.ts'), '150'], {
    cwd: workspaceRoot,
    env: { ...process.env, TS_NODE_PROJECT: path.join(workspaceRoot, 'packages', 'ffmpeg', 'tsconfig.json'), CAMSTREAM_SHARED: shared, H264_BENCH_ONLY: H264_BENCH_SETTING },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 20,
  });
  const rows: SsimRow[] = [];
  for (const line of output.split('\n')) {
    const cells = line.split('|').map((cell) => cell.trim());
    const source = cells[1];
    if (source !== 'test pattern' && source !== 'synthetic clip') continue;
    rows.push({ source, setting: cells[2]!, mbits: Number(cells[3]), ssim: Number(cells[5]), encodeMs: cells[6]!, decodeMs: cells[7]! });
  }
  if (rows.length !== 4) throw new Error(`the encoder bench printed ${rows.length} rows, expected 4:\n${output}`);
  return rows;
}

function report(loopback: LoopbackRun[], slowLink: SlowLinkRun[], ssim: SsimRow[], ssimLoad: number | undefined, startup: DecoderStartup, settings: { repeat: number; windowS: number; joinAfterS: number }): string {
  const lines: string[] = [];
  const met = (ok: boolean) => (ok ? 'met' : '**not met**');
  const loads = (runs: { load1: { start: number; end: number } }[]) => runs.map((r) => `${r.load1.start}/${r.load1.end}`).join(', ');
  const list = (values: (number | undefined)[], unit = '') => values.map((v) => (v === undefined || Number.isNaN(v) ? 'n/a' : `${v}${unit}`)).join(', ');
  lines.push(`# H.264 through the apps (issue 13)`, '');
  lines.push(
    `camstream-sender and camstream-receiver as separate processes, loopback TCP, ${WIDTH}x${HEIGHT} at ${FPS} fps; H.264 --bitrate ${H264_BITRATE} (x264 ultrafast), JPEG q80. ` +
      `${settings.repeat} runs per cell, judged on the median; each figure lists every run, and "load" the 1-minute load average at the start/end of each run (2 cores, shared). ` +
      `The window: ${settings.windowS} s with one receiver, after a second receiver joined at ${settings.joinAfterS} s and left, so well after the first receiver's first second (its catch-up GOP). ` +
      `Latency: median of the once-a-second p50s; p99 is the worst second's p99 (with ~30 frames a second, the largest latency of the window: an upper bound of its p99).`,
    '',
  );
  lines.push('| source | target | figure (each run) | median | met? | load (1 min) |', '|---|---|---|---|---|---|');
  for (const source of ['test pattern', 'synthetic clip'] as SourceName[]) {
    const h264 = loopback.filter((r) => r.source === source && r.codec === 'h264');
    const jpeg = loopback.filter((r) => r.source === source && r.codec === 'jpeg');
    if (h264.length === 0) continue;
    const h264Mbps = median(h264.map((r) => r.window.mbps));
    const jpegMbps = median(jpeg.map((r) => r.window.mbps));
    const share = h264Mbps / jpegMbps;
    lines.push(
      `| ${source} | H.264 bitrate <= ${TARGETS.bitrateShareOfJpeg * 100} % of JPEG q80's (receiver's Mbit/s) | H.264 ${list(h264.map((r) => r.window.mbps))} Mbit/s; JPEG ${list(jpeg.map((r) => r.window.mbps))} Mbit/s | ${round(h264Mbps, 2)} / ${round(jpegMbps, 2)} = ${round(share * 100, 0)} % | ${met(share <= TARGETS.bitrateShareOfJpeg)} | ${loads(h264)}; ${loads(jpeg)} |`,
    );
    const rows = ssim.filter((row) => row.source === source);
    const ssimH264 = rows.find((row) => row.setting === H264_BENCH_SETTING);
    const ssimJpeg = rows.find((row) => row.setting.startsWith('JPEG'));
    if (ssimH264 && ssimJpeg) {
      lines.push(
        `| ${source} | H.264 mean SSIM >= JPEG q80's (encoder bench, ${H264_BENCH_SETTING}) | H.264 ${ssimH264.ssim} (${ssimH264.mbits} Mbit/s); JPEG ${ssimJpeg.ssim} (${ssimJpeg.mbits} Mbit/s) | ${round(ssimH264.ssim - ssimJpeg.ssim, 4)} | ${met(ssimH264.ssim >= ssimJpeg.ssim)} | ${ssimLoad ?? '?'} |`,
      );
    }
    const p50 = round(median(h264.map((r) => r.window.p50)));
    const p99 = round(median(h264.map((r) => r.window.p99)));
    lines.push(
      `| ${source} | H.264 latency p50 < ${TARGETS.p50Ms} ms, p99 < ${TARGETS.p99Ms} ms (capture to decoded) | p50 ${list(h264.map((r) => r.window.p50))} ms; p99 ${list(h264.map((r) => r.window.p99))} ms (seconds' median p99 ${list(h264.map((r) => r.window.p99Median))}); ${list(h264.map((r) => r.window.decodedFps))} fps decoded | p50 ${p50} / p99 ${p99} ms | ${met(p50 < TARGETS.p50Ms && p99 < TARGETS.p99Ms)} | ${loads(h264)} |`,
    );
    const cores = median(h264.map((r) => r.senderCores));
    lines.push(
      `| ${source} | sender CPU, one H.264 stream <= ${TARGETS.senderCores} core (node + ffmpeg, /proc) | ${list(h264.map((r) => r.senderCores))} cores, of which node ${list(h264.map((r) => r.senderNodeCores))} (JPEG q80: ${list(jpeg.map((r) => r.senderCores))}); sender encode ${list(h264.map((r) => r.senderEncodeMs))} ms | ${round(cores, 3)} | ${met(cores <= TARGETS.senderCores)} | ${loads(h264)} |`,
    );
    const first = h264.map((r) => r.joiner.firstPictureMs);
    const known = first.filter((v): v is number => v !== undefined);
    const firstMedian = known.length === first.length ? round(median(known), 0) : NaN;
    lines.push(
      `| ${source} | late joiner (joins after ${settings.joinAfterS} s): connect to first decoded picture <= ${TARGETS.firstPictureMs} ms | ${list(first, ' ms')} (after its handshake ${list(h264.map((r) => r.joiner.handshakeToFirstPictureMs), ' ms')}; process start to first picture ${list(h264.map((r) => r.joiner.spawnToFirstPictureMs), ' ms')}; JPEG ${list(jpeg.map((r) => r.joiner.firstPictureMs), ' ms')}) | ${Number.isNaN(firstMedian) ? 'n/a' : `${firstMedian} ms`} | ${met(firstMedian <= TARGETS.firstPictureMs)} | ${loads(h264)} |`,
    );
  }
  if (slowLink.length > 0) {
    const p99 = round(median(slowLink.map((r) => r.lastSeconds.p99)));
    const describe = (w: WindowFigures) => `${w.decodedFps} fps, ${w.mbps} Mbit/s, p50 ${w.p50} / p99 ${w.p99} ms, ${w.droppedBySender} dropped by sender, ${w.skipped} skipped, rungs (s) ${JSON.stringify(w.rungs)}`;
    lines.push(
      `| synthetic clip | through a link at ${round(TARGETS.slowLinkShare * 100, 0)} % of the H.264 bitrate (${slowLink[0]!.rateKbit} kbit/s, 20 ms RTT): p99 <= ${TARGETS.slowLinkP99Ms} ms over the last 10 s | ${slowLink.map((r) => describe(r.lastSeconds)).join('; ')} | p99 ${p99} ms | ${met(p99 <= TARGETS.slowLinkP99Ms)} | ${loads(slowLink)} |`,
    );
  }
  lines.push('');
  lines.push('Per run (H.264 and JPEG), the window:', '');
  lines.push('| source | codec | run | Mbit/s | fps decoded | p50 / worst p99 ms | rungs (s) | sender cores | sender encode ms | joiner first picture ms | joiner after its first second: p50 / worst p99 ms | load start/end | others % before |', '|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of loopback) {
    const j = r.joiner.afterFirstSecond;
    lines.push(
      `| ${r.source} | ${r.codec} | ${r.run} | ${r.window.mbps} | ${r.window.decodedFps} | ${r.window.p50} / ${r.window.p99} | ${JSON.stringify(r.window.rungs)} | ${r.senderCores} | ${r.senderEncodeMs} | ${r.joiner.firstPictureMs ?? 'n/a'} | ${j ? `${j.p50} / ${j.p99}` : 'n/a'} | ${r.load1.start}/${r.load1.end} | ${r.backgroundPercent ?? '?'} |`,
    );
  }
  lines.push(
    '',
    `Where a late joiner's first picture waits (H.264): the receiver's launcher starts its decoder (an ffmpeg process) before the app loads, and the app gives it the first keyframe. ` +
      `At load ${startup.load1}: \`ffmpeg -version\` alone ${list(startup.ffmpegVersionMs, ' ms')}; a new H264Decoder to its first 720p keyframe's picture ${list(startup.newDecoderFirstPictureMs, ' ms')}; ` +
      `the same decoder's next keyframe ${list(startup.nextKeyframeMs, ' ms')}.`,
  );
  const encoderRows = ssim.filter((row) => row.setting === H264_BENCH_SETTING);
  if (encoderRows.length > 0) {
    lines.push(
      '',
      `Where the latency goes (H.264): the sender's encode (capture to access unit, its stats lines' mean) is in the table above; the encoder bench, at load ${ssimLoad ?? '?'}, ` +
        `frame by frame at 30 fps: ${encoderRows.map((row) => `${row.source}: x264 encode p50/p99 ${row.encodeMs} ms, ffmpeg decode ${row.decodeMs} ms`).join('; ')}.`,
    );
  }
  if (slowLink.length > 0) {
    lines.push('', 'Slow link, whole runs:', '');
    for (const r of slowLink) {
      lines.push(`- run ${r.run}: ${r.whole.seconds} s, ${r.whole.decodedFps} fps, ${r.whole.mbps} Mbit/s, ${r.whole.droppedBySender} dropped by sender, rungs (s) ${JSON.stringify(r.whole.rungs)}; last 10 s: ${r.lastSeconds.decodedFps} fps, p50 ${r.lastSeconds.p50} / p99 ${r.lastSeconds.p99} ms (load ${r.load1.start}/${r.load1.end}); each second rung:p99 ${r.whole.perSecond.join(' ')}`);
    }
  }
  lines.push('');
  return `${lines.join('\n')}\n`;
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`bench:h264: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => stopAllProcesses());
