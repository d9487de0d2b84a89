import * as path from 'node:path';
import { freePort, startProcess, type AppProcess } from '@camstream/testkit';
import { cpus } from 'node:os';
import { busyBetween, cpuTimes } from './machine-load';
import { RESULT_PREFIX, round } from './usage';

/** One measured configuration. */
export interface CellSpec {
  /**
   * throughput: source at fps 0, as fast as possible; latency: paced at a camera's rate;
   * paced: JPEG paced at the fps target, to see whether a camera at that rate is kept up with.
   */
  kind: 'throughput' | 'latency' | 'paced';
  width: number;
  height: number;
  encoding: 'raw-bgr' | 'jpeg';
  quality: number;
  receivers: number;
  /** Source pacing; 0 = as fast as possible. */
  fps: number;
}

export interface SenderFigures {
  windowMarked: boolean;
  fps: number;
  frames: number;
  encodeMsMean: number;
  payloadBytesMean: number;
  viewers: { id: number; name?: string; sent: number; dropped: number; bytesSent?: number; rung?: number }[];
  seconds: number;
  cpuPercent: number;
  userSeconds: number;
  systemSeconds: number;
  maxRssMB: number;
}

export interface ReceiverFigures {
  outcome: string;
  windowMarked: boolean;
  received: number;
  decoded: number;
  receivedFps: number;
  decodedFps: number;
  MBps: number;
  latencyMs: { p50: number; p95: number; p99: number } | null;
  /** Capture -> received and checked, before decoding. */
  arrivalLatencyMs: { p50: number; p99: number } | null;
  /** Wall time of one decode call (JPEG: OpenCV on the thread pool, plus the copy out). */
  decodeMs: { p50: number; p99: number } | null;
  senderDropped: number;
  skipped: number;
  gaps: number;
  corrupt: number;
  seconds: number;
  cpuPercent: number;
  userSeconds: number;
  systemSeconds: number;
  maxRssMB: number;
  log?: string[];
}

export interface CellResult {
  spec: CellSpec;
  /** CPU the rest of the machine used just before the cell (percent of one core). */
  backgroundCpuPercent?: number;
  /**
   * CPU the rest of the machine used during the measured window: all cores' busy time (steal
   * included) minus our processes', in percent of one core. Above a few % the cell was disturbed.
   */
  othersCpuPercent?: number;
  /** Raw cells: what loopback TCP carried (iperf3) just before the cell, bytes per second. */
  loopbackBytesPerSecond?: number;
  sender: SenderFigures;
  receivers: ReceiverFigures[];
}

export interface DriverSettings {
  workspaceRoot: string;
  /** Extra environment for both drivers (the launch settings under test). */
  env: Record<string, string>;
  warmupS: number;
  durationS: number;
  /** The sender copies every frame into a new Buffer, as capturing from OpenCV does. */
  captureCopy?: boolean;
  /** Write V8 CPU profiles of every driver into this directory. */
  cpuProfileDir?: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function startDriver(settings: DriverSettings, script: string, args: string[], name: string): AppProcess {
  const nodeArgs = ['-r', 'ts-node/register/transpile-only'];
  if (settings.cpuProfileDir) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${settings.cpuProfileDir}`, `--cpu-prof-name=${name}-${Date.now()}.cpuprofile`);
  return startProcess(process.execPath, [...nodeArgs, path.join(settings.workspaceRoot, 'packages/bench/src', script), ...args], {
    name,
    cwd: settings.workspaceRoot,
    env: { TS_NODE_PROJECT: path.join(settings.workspaceRoot, 'packages/bench/tsconfig.json'), ...settings.env },
  });
}

export function parseResult<T>(child: AppProcess): T {
  const line = child.stdoutLines.find((l) => l.startsWith(RESULT_PREFIX));
  if (!line) throw new Error(`${child.name} printed no result. Last output:\n${child.outputTail()}`);
  return JSON.parse(line.slice(RESULT_PREFIX.length)) as T;
}

/** Why a cell's figures cannot be used (a process missed the window or ended early), or undefined. */
export function cellProblem(cell: CellResult): string | undefined {
  if (!cell.sender.windowMarked) return 'the sender missed the start of the measured window';
  for (const r of cell.receivers) {
    if (!r.windowMarked) return 'a receiver missed the start of the measured window';
    if (r.outcome !== 'stopped') return `a receiver ended early: ${r.outcome} ${(r.log ?? []).join(' | ')}`;
  }
  return undefined;
}

/**
 * Runs one cell: a sender process and `receivers` receiver processes over loopback. All of them
 * measure the same window: SIGUSR2 to every process `warmupS` after all receivers got their
 * first frame, SIGTERM to every process `durationS` later.
 */
export async function runCell(spec: CellSpec, clipFile: string, settings: DriverSettings): Promise<CellResult> {
  const children: AppProcess[] = [];
  try {
    const sender = startDriver(
      settings,
      'sender-driver.ts',
      [
        '--frames-file', clipFile,
        '--width', String(spec.width),
        '--height', String(spec.height),
        '--encoding', spec.encoding,
        '--quality', String(spec.quality),
        '--fps', String(spec.fps),
        '--viewers', String(spec.receivers),
        ...(settings.captureCopy ? ['--capture-copy'] : []),
      ],
      'sender',
    );
    children.push(sender);
    const listening = await sender.waitForLine(/^LISTENING AT: /, { stream: 'stdout', timeoutMs: 60_000 });
    const port = listening.slice(listening.lastIndexOf(':') + 1);
    const receivers: AppProcess[] = [];
    for (let i = 1; i <= spec.receivers; i++) {
      const receiver = startDriver(settings, 'receiver-driver.ts', ['--port', port, '--name', `bench-${i}`], `receiver-${i}`);
      receivers.push(receiver);
      children.push(receiver);
    }
    await Promise.all(receivers.map((r) => r.waitForLine(/^STREAMING$/, { stream: 'stdout', timeoutMs: 60_000 })));
    await sleep(settings.warmupS * 1000);
    for (const child of children) child.signal('SIGUSR2');
    const machineBefore = cpuTimes();
    await sleep(settings.durationS * 1000);
    const machineBusy = busyBetween(machineBefore, cpuTimes(), cpus().length);
    for (const child of children) child.signal('SIGTERM');
    await Promise.all(children.map((child) => child.waitForExit(20_000)));
    const result: CellResult = {
      spec,
      sender: parseResult<SenderFigures>(sender),
      receivers: receivers.map((r) => parseResult<ReceiverFigures>(r)),
    };
    if (machineBusy !== undefined) {
      const ours = result.sender.cpuPercent + result.receivers.reduce((sum, r) => sum + r.cpuPercent, 0);
      result.othersCpuPercent = Math.max(0, round(machineBusy - ours, 0));
    }
    return result;
  } finally {
    await Promise.all(children.map((child) => child.kill()));
  }
}

export interface TutorialResult {
  backgroundCpuPercent?: number;
  width: number;
  height: number;
  fps: number;
  MBps: number;
  frames: number;
  seconds: number;
  first_frame_s: number | null;
  /** Whole-process figures from /usr/bin/time (start-up and the first frame included). */
  receiverProcess?: { cpuSeconds: number; elapsedSeconds: number; maxRssMB: number };
  streamerProcess?: { cpuSeconds: number; elapsedSeconds: number; maxRssMB: number };
}

const TIME_FORMAT = 'BENCH-TIME %U %S %e %M';

function parseTime(child: AppProcess): { cpuSeconds: number; elapsedSeconds: number; maxRssMB: number } | undefined {
  const line = child.stderrLines.find((l) => l.startsWith('BENCH-TIME '));
  if (!line) return undefined;
  const [user, system, elapsed, maxKB] = line.split(' ').slice(1).map(Number) as [number, number, number, number];
  return { cpuSeconds: Math.round((user + system) * 100) / 100, elapsedSeconds: elapsed, maxRssMB: Math.round((maxKB * 1024) / 1e5) / 10 };
}

/**
 * The tutorial's Python pair on the same clip: seed_streamer.py (raw frames, pickle) and
 * seed_receiver.py, one receiver, `durationS` seconds of steady state after its first frame.
 */
export async function runTutorial(
  options: { python: string; shared: string; clipFile: string; width: number; height: number; durationS: number },
): Promise<TutorialResult> {
  const { python, shared, clipFile, width, height, durationS } = options;
  const port = String(await freePort());
  const timed = (script: string, args: string[], name: string) =>
    startProcess('/usr/bin/time', ['-f', TIME_FORMAT, python, path.join(shared, 'peers', script), ...args], { name });
  const children: AppProcess[] = [];
  try {
    const streamer = timed('seed_streamer.py', ['--port', port, '--width', String(width), '--height', String(height), '--frames-file', clipFile], 'seed_streamer');
    children.push(streamer);
    await streamer.waitForLine(/LISTENING AT/, { timeoutMs: 60_000 });
    const receiver = timed('seed_receiver.py', ['--port', port, '--duration', String(durationS), '--expect', `${width}x${height}`], 'seed_receiver');
    children.push(receiver);
    // Its first 1080p frame alone takes ~17 s (the growing `data +=` buffer).
    await receiver.waitForExit(180_000 + durationS * 1000);
    await streamer.waitForExit(10_000).catch(() => undefined);
    const line = [...receiver.stdoutLines].reverse().find((l) => l.startsWith('{'));
    if (!line) throw new Error(`seed_receiver.py printed no result. Last output:\n${receiver.outputTail()}`);
    const figures = JSON.parse(line) as Omit<TutorialResult, 'width' | 'height'>;
    const receiverProcess = parseTime(receiver);
    const streamerProcess = parseTime(streamer);
    return {
      width,
      height,
      fps: figures.fps,
      MBps: figures.MBps,
      frames: figures.frames,
      seconds: figures.seconds,
      first_frame_s: figures.first_frame_s,
      ...(receiverProcess ? { receiverProcess } : {}),
      ...(streamerProcess ? { streamerProcess } : {}),
    };
  } finally {
    await Promise.all(children.map((child) => child.kill()));
  }
}
