/*
 * The tutorial's wire, side by side (issue 11): the tutorial's streamer (seed_streamer.py)
 * watched by its own receiver (seed_receiver.py) and by camstream-receiver --wire tutorial, and
 * the tutorial's receiver served by its own streamer and by camstream-sender --wire tutorial, at
 * each size: frames per second after the first frame, and the time from connecting to the first
 * frame; and, to read those against, how fast the streamer sends at all. Every process is
 * separate, over loopback TCP, on synth.py's frames (the sender plays them from a lossless file
 * as fast as it reads them, as the streamer sends them from memory).
 *
 *   npx nx run bench:tutorial                          640x480, 1280x720, 1920x1080; 5 s each
 *   npx nx run bench:tutorial -- --sizes 640x480 --duration 3
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, startApp, startProcess, stopAllProcesses, workspaceRoot, type AppProcess } from '@camstream/testkit';

const PEERS = path.join(workspaceRoot, 'packages', 'tutorial-wire', 'fixtures');

/** Targets of issue 11, at 1920x1080. */
const TARGETS = { receiverFpsRatio: 10, receiverFirstFrameS: 0.5 };

interface Figures {
  fps: number;
  firstFrameS: number;
  frames: number;
}

interface SizeResult {
  size: string;
  /** The tutorial's streamer watched by its own receiver. */
  tutorialPair: Figures;
  /** The tutorial's streamer watched by camstream-receiver --wire tutorial. */
  ourReceiver: Figures;
  /** The tutorial's receiver served by camstream-sender --wire tutorial. */
  ourSender: Figures;
  /** The most the tutorial's streamer sends: to a reader that only counts bytes, in frames per second. */
  streamerCeilingFps: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: '640x480,1280x720,1920x1080' },
      duration: { type: 'string', default: '5' },
      python: { type: 'string', default: '/usr/bin/python3' },
      'frames-dir': { type: 'string', default: path.join(tmpdir(), 'camstream-bench-tutorial-frames') },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('Usage: npx nx run bench:tutorial [-- --sizes 640x480,1280x720,1920x1080] [--duration S] [--python PATH] [--frames-dir DIR]\n');
    return;
  }
  const durationS = Number(values.duration);
  if (!(durationS > 0)) throw new Error(`--duration ${JSON.stringify(values.duration)}: expected a number of seconds above 0`);
  const sizes = values.sizes.split(',').map((text) => {
    const match = /^(\d+)x(\d+)$/.exec(text.trim());
    if (!match) throw new Error(`--sizes: "${text}" is not WIDTHxHEIGHT`);
    return { width: Number(match[1]), height: Number(match[2]) };
  });
  const python = values.python;
  const framesDir = values['frames-dir'];
  mkdirSync(framesDir, { recursive: true });

  const results: SizeResult[] = [];
  for (const { width, height } of sizes) {
    const size = `${width}x${height}`;
    const { raw, video } = clipFor(python, framesDir, width, height);
    process.stderr.write(`[bench] ${size}: the tutorial's pair...\n`);
    const tutorialPair = await tutorialReceiverOf(python, width, height, durationS, (port) => startStreamer(python, raw, width, height, port));
    process.stderr.write(`[bench] ${size}: the tutorial's streamer watched by camstream-receiver --wire tutorial...\n`);
    const ourReceiver = await ourReceiverOf(python, raw, width, height, durationS);
    process.stderr.write(`[bench] ${size}: the tutorial's receiver served by camstream-sender --wire tutorial...\n`);
    const ourSender = await tutorialReceiverOf(python, width, height, durationS, (port) => startOurSender(video, port));
    process.stderr.write(`[bench] ${size}: the tutorial's streamer to a reader that only counts bytes...\n`);
    const streamerCeilingFps = await streamerCeiling(python, raw, width, height, durationS);
    results.push({ size, tutorialPair, ourReceiver, ourSender, streamerCeilingFps });
    process.stderr.write(`[bench] ${size}: ${JSON.stringify({ tutorialPair, ourReceiver, ourSender, streamerCeilingFps })}\n`);
  }
  printTable(results);
  process.stdout.write(`${JSON.stringify({ durationS, results })}\n`);
}

/** synth.py's frames at this size (10 of them: a 1080p clip is 62 MB), raw and as a lossless AVI. */
function clipFor(python: string, dir: string, width: number, height: number): { raw: string; video: string } {
  const raw = path.join(dir, `${width}x${height}.bgr`);
  const video = path.join(dir, `${width}x${height}.avi`);
  if (!existsSync(raw)) execFileSync(python, [path.join(PEERS, 'synth.py'), dir, String(width), String(height), '10'], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (!existsSync(video)) {
    execFileSync('ffmpeg', ['-loglevel', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'bgr24', '-s', `${width}x${height}`, '-r', '30', '-i', raw, '-c:v', 'rawvideo', '-pix_fmt', 'bgr24', video]);
  }
  return { raw, video };
}

async function startStreamer(python: string, raw: string, width: number, height: number, port: number): Promise<AppProcess> {
  const streamer = startProcess(python, [path.join(PEERS, 'seed_streamer.py'), '--port', String(port), '--width', String(width), '--height', String(height), '--frames-file', raw], {
    name: 'seed_streamer.py',
    env: { PYTHONUNBUFFERED: '1' },
  });
  await streamer.waitForLine(/^LISTENING AT:/, { stream: 'stdout', timeoutMs: 120_000 });
  return streamer;
}

async function startOurSender(video: string, port: number): Promise<AppProcess> {
  // --fps 0: as fast as the file reads, as the tutorial's streamer sends from memory.
  const sender = startApp('sender', ['--wire', 'tutorial', '--source', video, '--loop', '--fps', '0', '--port', String(port), '--quiet']);
  await sender.waitForLine(/^LISTENING AT: /, { stream: 'stdout', timeoutMs: 60_000 });
  return sender;
}

/** seed_receiver.py against whatever `serve` starts: its own figures (fps after its first frame, time to it). */
async function tutorialReceiverOf(python: string, width: number, height: number, durationS: number, serve: (port: number) => Promise<AppProcess>): Promise<Figures> {
  const port = await freePort();
  const server = await serve(port);
  try {
    const receiver = startProcess(python, [path.join(PEERS, 'seed_receiver.py'), '--port', String(port), '--duration', String(durationS), '--expect', `${width}x${height}`], {
      name: 'seed_receiver.py',
    });
    const exit = await receiver.waitForExit(600_000);
    if (exit.code !== 0) throw new Error(`seed_receiver.py failed (${JSON.stringify(exit)}):\n${receiver.stderrLines.slice(-10).join('\n')}`);
    const result = JSON.parse(receiver.stdoutLines.at(-1)!) as { frames: number; fps: number; first_frame_s: number };
    return { fps: result.fps, firstFrameS: result.first_frame_s, frames: result.frames };
  } finally {
    await server[Symbol.asyncDispose]();
  }
}

/** camstream-receiver --wire tutorial against the tutorial's streamer: fps over the whole seconds after its first frame, and its time to it. */
async function ourReceiverOf(python: string, raw: string, width: number, height: number, durationS: number): Promise<Figures> {
  const port = await freePort();
  await using _streamer = await startStreamer(python, raw, width, height, port);
  const receiver = startApp('receiver', ['--wire', 'tutorial', `127.0.0.1:${port}`, '--display', 'off', '--stats-json', '--no-reconnect', '--duration', String(durationS + 2)], {
    env: { DISPLAY: undefined, WAYLAND_DISPLAY: undefined },
  });
  await using _receiver = receiver;
  const exit = await receiver.waitForExit(120_000);
  if (exit.code !== 0) throw new Error(`camstream-receiver failed (${JSON.stringify(exit)}):\n${receiver.stderrLines.slice(-10).join('\n')}`);
  const first = receiver.stderrLines.map((line) => / ([\d.]+) s after connecting/.exec(line)).find(Boolean);
  if (!first) throw new Error(`camstream-receiver got no frame:\n${receiver.stderrLines.slice(-10).join('\n')}`);
  const intervals = receiver.stdoutLines
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { kind: string; fps: number; seconds: number })
    .filter((line) => line.kind === 'interval');
  // The seconds after the one the first frame came in (steady state, as seed_receiver measures it).
  const firstWith = intervals.findIndex((line) => line.fps > 0);
  const steady = intervals.slice(firstWith + 1);
  const frames = steady.reduce((sum, line) => sum + line.fps * line.seconds, 0);
  const seconds = steady.reduce((sum, line) => sum + line.seconds, 0);
  return { fps: seconds > 0 ? Math.round((frames / seconds) * 10) / 10 : 0, firstFrameS: Number(first[1]), frames: Math.round(frames) };
}

/** How fast the tutorial's streamer sends at all: a Python reader with one reused 1 MiB buffer, counting bytes. */
async function streamerCeiling(python: string, raw: string, width: number, height: number, durationS: number): Promise<number> {
  const port = await freePort();
  await using _streamer = await startStreamer(python, raw, width, height, port);
  const script = [
    'import socket, sys, time',
    `s = socket.create_connection(("127.0.0.1", ${port}))`,
    'b = bytearray(1 << 20)',
    'n = 0',
    't = time.perf_counter()',
    `while time.perf_counter() - t < ${durationS}:`,
    '    n += s.recv_into(b)',
    'print(n / (time.perf_counter() - t))',
  ].join('\n');
  const reader = startProcess(python, ['-c', script], { name: 'byte counter' });
  const exit = await reader.waitForExit(120_000);
  if (exit.code !== 0) throw new Error(`the byte counter failed: ${reader.stderrLines.slice(-5).join('\n')}`);
  const bytesPerSecond = Number(reader.stdoutLines.at(-1));
  // Each frame: 8 bytes of length and a pickle of W*H*3 bytes and about 150 more.
  return Math.round((bytesPerSecond / (8 + width * height * 3 + 150)) * 10) / 10;
}

function printTable(results: readonly SizeResult[]): void {
  const rows = [
    ['size', 'streamer ceiling fps', "tutorial pair fps", 'first frame s', 'camstream-receiver fps', 'first frame s', 'x tutorial', "camstream-sender -> tutorial receiver fps", 'first frame s', 'x tutorial'],
    ...results.map((r) => [
      r.size,
      r.streamerCeilingFps.toFixed(1),
      r.tutorialPair.fps.toFixed(2),
      r.tutorialPair.firstFrameS.toFixed(2),
      r.ourReceiver.fps.toFixed(1),
      r.ourReceiver.firstFrameS.toFixed(3),
      ratio(r.ourReceiver.fps, r.tutorialPair.fps),
      r.ourSender.fps.toFixed(2),
      r.ourSender.firstFrameS.toFixed(2),
      ratio(r.ourSender.fps, r.tutorialPair.fps),
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const row of rows) process.stdout.write(`${row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ')}\n`);
  const hd = results.find((r) => r.size === '1920x1080');
  if (hd) {
    const receiverRatio = hd.ourReceiver.fps / hd.tutorialPair.fps;
    process.stdout.write(
      `targets at 1920x1080: camstream-receiver ${receiverRatio.toFixed(1)}x the tutorial receiver's fps (target >= ${TARGETS.receiverFpsRatio}x: ${receiverRatio >= TARGETS.receiverFpsRatio ? 'met' : 'NOT met'}), ` +
        `the tutorial's streamer itself sends at most ${hd.streamerCeilingFps.toFixed(1)} fps here; ` +
        `first frame ${hd.ourReceiver.firstFrameS.toFixed(3)} s (target <= ${TARGETS.receiverFirstFrameS} s: ${hd.ourReceiver.firstFrameS <= TARGETS.receiverFirstFrameS ? 'met' : 'NOT met'}); ` +
        `camstream-sender serves the tutorial receiver at ${ratio(hd.ourSender.fps, hd.tutorialPair.fps)} its own sender's fps (target >= 1x: ${hd.ourSender.fps >= hd.tutorialPair.fps ? 'met' : 'NOT met'})\n`,
    );
  }
}

function ratio(ours: number, theirs: number): string {
  return theirs > 0 ? `${(ours / theirs).toFixed(1)}x` : '-';
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`bench:tutorial: ${(err as Error).message}\n`);
    process.exitCode = 1;
  })
  .finally(() => stopAllProcesses());
