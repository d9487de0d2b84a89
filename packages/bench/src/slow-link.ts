/*
 * Slow-link cells: 720p30 JPEG q80 (the OpenCV test pattern) from the sender driver to receiver
 * drivers through the testkit's chaos proxy (its CLI, a process of its own, like a network), each
 * cell 30 s, figures over the last 10 s, against the targets of issue 10. Prints a table; writes
 * bench-results/slow-link.{json,md}.
 *
 *   npx nx run bench:slow-link                       every cell (about 7 minutes)
 *   npx nx run bench:slow-link -- --cells 55,pause   some of them (the direct cell always runs first:
 *                                                    it measures the stream's bitrate)
 *   npx nx run bench:slow-link -- --help
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { freePort, startProcess, workspaceRoot, type AppProcess } from '@camstream/testkit';
import { parseResult, startDriver, type DriverSettings, type ReceiverFigures, type SenderFigures } from './cells';
import { ensureClip, sharedDir } from './frames';
import { busyBetween, cpuTimes, waitForQuiet } from './machine-load';
import { processCpuSeconds } from './process-cpu';
import {
  flowState,
  fullQualityAfterMs,
  linkUse,
  recoveryMs,
  windowFigures,
  type DecodedFrame,
  type ProxyStatsLine,
  type ViewerStatsLine,
} from './slow-link-figures';
import { round } from './usage';

const USAGE = `Usage: npx nx run bench:slow-link [-- options]

720p30 JPEG q80 test pattern, sender and receivers as separate processes, through the chaos
proxy (a process of its own) at a fraction of the stream's bitrate with a 20 ms round trip.
Each cell runs --seconds and reports over the last --last seconds.

Cells (--cells, comma-separated; default all):
  direct     one receiver, no proxy: the reference, and the stream's bitrate (always runs first)
  80, 55, 50, 25
             one receiver through a link at that % of the stream's bitrate
  55-off     the 55 % link with --adapt off (drops only, rung 0 always), for comparison
  pause      one receiver, 20 ms round trip, no rate limit; SIGSTOP for 3 s at 15 s, then SIGCONT
  drop       a link at --drop-base of the bitrate that drops to 30 % of the bitrate for 5 s
             (12 s after the receiver connects) and recovers
  beside     two receivers of one sender: one direct, one through a 25 % link
  tutorial   the tutorial's Python pair (raw 720p, pickle) through the 50 % link

Options:
  --cells LIST        see above
  --seconds S         length of each cell after the first frame (default 30)
  --last S            figures over the last S seconds (default 10)
  --drop-base X       the drop cell's normal rate, as a multiple of the bitrate (default 1.5)
  --burst BYTES       the links' token-bucket depth (default: the proxy's, the larger of 16 KiB
                      and 10 ms at the rate). A frame smaller than the burst that finds the link
                      idle crosses it at loopback speed, so its arrival says nothing of the rate
  --quiet-below N     before each cell wait until the rest of the machine uses less than N % of one core (default 25)...
  --max-wait S        ...but at most S seconds (default 60; 0 = never wait)
  --out DIR           output directory (default <workspace>/bench-results)
  --python PATH       Python with OpenCV and NumPy, for the tutorial cell (default /usr/bin/python3)
  -h, --help          this text
`;

const WIDTH = 1280;
const HEIGHT = 720;
const FPS = 30;
const QUALITY = 80;
const ONE_WAY_DELAY_MS = 10;
const PAUSE = { atS: 15, forS: 3 };
const DROP = { atS: 12, forS: 5, fraction: 0.3 };
/** Issue 10's targets. */
const TARGETS = {
  at55: { p99: 150, fps: 25, use: 0.8 },
  at25: { p99: 250, fps: 10 },
  pause: { p99: 150, withinMs: 2000 },
  recover: { withinMs: 3000, minFramesPerSecond: 29 },
  direct: { fps: 29, p99: 30 },
};
const ALL_CELLS = ['direct', '80', '55', '55-off', '50', '25', 'pause', 'drop', 'beside', 'tutorial'];

const log = (line: string) => process.stderr.write(`[slow-link] ${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const mbit = (bytesPerSecond: number) => round((bytesPerSecond * 8) / 1e6, 2);

interface LinkSpec {
  /** Rate as a fraction of the stream's bitrate; undefined: no limit (delay only). */
  fraction?: number;
  /** --schedule, given the rate of 1.0 x bitrate in bytes/s. */
  schedule?: (bitrate: number) => string;
}

interface CellSpec {
  id: string;
  title: string;
  adapt: boolean;
  receivers: Array<{ name: string; link?: LinkSpec }>;
  pause?: { atS: number; forS: number };
}

function cellSpec(id: string, dropBase: number): CellSpec {
  const slow = (fraction: number, adapt = true): CellSpec => ({
    id,
    title: `link at ${round(fraction * 100, 0)} % of the bitrate, 20 ms round trip${adapt ? '' : ', --adapt off'}`,
    adapt,
    receivers: [{ name: 'slow', link: { fraction } }],
  });
  switch (id) {
    case 'direct':
      return { id, title: 'direct (loopback, no proxy)', adapt: true, receivers: [{ name: 'direct' }] };
    case '80':
    case '55':
    case '50':
    case '25':
      return slow(Number(id) / 100);
    case '55-off':
      return slow(0.55, false);
    case 'pause':
      return {
        id,
        title: `receiver stopped ${PAUSE.forS} s (SIGSTOP/SIGCONT) at ${PAUSE.atS} s, 20 ms round trip, no rate limit`,
        adapt: true,
        receivers: [{ name: 'paused', link: {} }],
        pause: PAUSE,
      };
    case 'drop':
      return {
        id,
        title: `link at ${round(dropBase * 100, 0)} % of the bitrate, down to ${round(DROP.fraction * 100, 0)} % of the bitrate for ${DROP.forS} s at ${DROP.atS} s`,
        adapt: true,
        receivers: [
          {
            name: 'slow',
            link: { fraction: dropBase, schedule: (bitrate) => `${DROP.atS}s:full,${DROP.forS}s:${Math.round(bitrate * DROP.fraction)}B,full` },
          },
        ],
      };
    case 'beside':
      return {
        id,
        title: 'two receivers of one sender: one direct, one through a 25 % link',
        adapt: true,
        receivers: [{ name: 'direct' }, { name: 'slow', link: { fraction: 0.25 } }],
      };
    default:
      throw new Error(`unknown cell ${JSON.stringify(id)}: one of ${ALL_CELLS.join(', ')}`);
  }
}

interface Proxy {
  process: AppProcess;
  port: number;
  bytesPerSecond: number;
  rateChanges: Array<{ at: number; line: string }>;
}

async function startProxy(targetPort: number, link: LinkSpec, bitrate: number, burstBytes: number | undefined): Promise<Proxy> {
  const bytesPerSecond = link.fraction === undefined ? Infinity : Math.round(bitrate * link.fraction);
  const args = [
    '--target', `127.0.0.1:${targetPort}`,
    '--rate', Number.isFinite(bytesPerSecond) ? `${bytesPerSecond}B` : 'unlimited',
    '--delay', String(ONE_WAY_DELAY_MS),
    '--stats-json',
    ...(burstBytes === undefined ? [] : ['--burst', String(burstBytes)]),
    ...(link.schedule ? ['--schedule', link.schedule(bitrate), '--schedule-from', 'first-connection'] : []),
  ];
  const child = startProcess(process.execPath, [path.join(workspaceRoot, 'packages/testkit/bin/chaos-proxy'), ...args], { name: 'chaos-proxy' });
  const line = await child.waitForLine(/^LISTENING AT: /, { stream: 'stdout', timeoutMs: 60_000 });
  const proxy: Proxy = { process: child, port: Number(line.slice(line.lastIndexOf(':') + 1)), bytesPerSecond, rateChanges: [] };
  // Each rate change is timed as its line arrives (the proxy prints no time of its own).
  const watch = async () => {
    for (;;) {
      const change = await child.waitForLine(/^RATE down /, { stream: 'stdout', timeoutMs: 600_000, newOnly: true }).catch(() => undefined);
      if (change === undefined) return;
      proxy.rateChanges.push({ at: Date.now(), line: change });
    }
  };
  void watch();
  return proxy;
}

interface Conditions {
  /** 1-minute load average at the end of the cell. */
  load1: number;
  /** What the whole machine used over the reported window, % of one core (this machine has N cores). */
  machineCpu: number | undefined;
  /** ... of which other programs (not this cell's processes). */
  othersCpu: number | undefined;
  /** What other programs used just before the cell. */
  backgroundCpu: number | undefined;
}

interface ReceiverRecord {
  name: string;
  link: string;
  frames: DecodedFrame[];
  result: ReceiverFigures;
  proxyLines: ProxyStatsLine[];
  linkBytesPerSecond: number;
  rateChanges: Array<{ at: number; line: string }>;
}

interface CellRecord {
  spec: CellSpec;
  /** Wall clock when every receiver had its first frame: the cell's time 0. */
  t0: number;
  seconds: number;
  sender: SenderFigures;
  viewerLines: ViewerStatsLine[];
  receivers: ReceiverRecord[];
  pausedAt?: number;
  resumedAt?: number;
  conditions: Conditions;
}

interface Settings {
  seconds: number;
  lastS: number;
  quietBelow: number;
  maxWaitS: number;
  driver: DriverSettings;
  framesDir: string;
  burstBytes: number | undefined;
}

async function settle(settings: Settings): Promise<number | undefined> {
  return waitForQuiet(settings.quietBelow, settings.maxWaitS * 1000, cpus().length);
}

async function runCell(spec: CellSpec, bitrate: number, settings: Settings): Promise<CellRecord> {
  const background = await settle(settings);
  const children: AppProcess[] = [];
  try {
    const sender = startDriver(
      settings.driver,
      'sender-driver.ts',
      ['--source', 'test', '--width', String(WIDTH), '--height', String(HEIGHT), '--encoding', 'jpeg', '--quality', String(QUALITY),
        '--fps', String(FPS), '--viewers', String(spec.receivers.length), '--adapt', spec.adapt ? 'on' : 'off', '--viewer-stats'],
      'sender',
    );
    children.push(sender);
    const listening = await sender.waitForLine(/^LISTENING AT: /, { stream: 'stdout', timeoutMs: 60_000 });
    const senderPort = Number(listening.slice(listening.lastIndexOf(':') + 1));
    const receivers: Array<{ spec: CellSpec['receivers'][number]; child: AppProcess; proxy?: Proxy; framesFile: string }> = [];
    for (const r of spec.receivers) {
      const proxy = r.link ? await startProxy(senderPort, r.link, bitrate, settings.burstBytes) : undefined;
      if (proxy) children.push(proxy.process);
      const framesFile = path.join(settings.framesDir, `${spec.id}-${r.name}-${process.pid}.jsonl`);
      const child = startDriver(settings.driver, 'receiver-driver.ts', ['--port', String(proxy?.port ?? senderPort), '--name', r.name, '--frames-out', framesFile], `receiver-${r.name}`);
      children.push(child);
      receivers.push({ spec: r, child, ...(proxy ? { proxy } : {}), framesFile });
    }
    await Promise.all(receivers.map((r) => r.child.waitForLine(/^STREAMING$/, { stream: 'stdout', timeoutMs: 60_000 })));
    const t0 = Date.now();
    const at = (s: number) => sleep(t0 + s * 1000 - Date.now());
    let pausedAt: number | undefined;
    let resumedAt: number | undefined;
    if (spec.pause) {
      await at(spec.pause.atS);
      receivers[0]!.child.signal('SIGSTOP');
      pausedAt = Date.now();
      await at(spec.pause.atS + spec.pause.forS);
      receivers[0]!.child.signal('SIGCONT');
      resumedAt = Date.now();
    }
    // The drivers' own windows (CPU, drops, gaps) are the last `lastS` seconds too.
    await at(settings.seconds - settings.lastS);
    // Not the proxies: they have no window (and Node ends on a SIGUSR2 it does not handle).
    for (const child of [sender, ...receivers.map((r) => r.child)]) child.signal('SIGUSR2');
    const machineBefore = cpuTimes();
    const oursBefore = children.map((c) => processCpuSeconds(c.pid));
    await at(settings.seconds);
    const machineCpu = busyBetween(machineBefore, cpuTimes(), cpus().length);
    const oursCpu = children.reduce((sum, c, i) => sum + (processCpuSeconds(c.pid) - oursBefore[i]!), 0);
    const othersCpu = machineCpu === undefined || Number.isNaN(oursCpu) ? undefined : Math.max(0, Math.round(machineCpu - (oursCpu / settings.lastS) * 100));
    for (const r of receivers) r.child.signal('SIGTERM');
    sender.signal('SIGTERM');
    await Promise.all([sender, ...receivers.map((r) => r.child)].map((c) => c.waitForExit(20_000)));
    const json = <T>(child: AppProcess, prefix: string) =>
      child.stdoutLines.filter((l) => l.startsWith(prefix)).map((l) => JSON.parse(l.slice(prefix.length)) as T);
    const record: CellRecord = {
      spec,
      t0,
      seconds: settings.seconds,
      sender: parseResult<SenderFigures>(sender),
      viewerLines: json<ViewerStatsLine>(sender, 'VIEWERS '),
      receivers: receivers.map((r) => ({
        name: r.spec.name,
        link: r.proxy ? describeLink(r.spec.link!, bitrate) : 'direct',
        frames: readFileSync(r.framesFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as DecodedFrame),
        result: parseResult<ReceiverFigures>(r.child),
        proxyLines: r.proxy ? r.proxy.process.stdoutLines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as ProxyStatsLine) : [],
        linkBytesPerSecond: r.proxy?.bytesPerSecond ?? Infinity,
        rateChanges: r.proxy?.rateChanges ?? [],
      })),
      ...(pausedAt === undefined ? {} : { pausedAt }),
      ...(resumedAt === undefined ? {} : { resumedAt }),
      conditions: { load1: round(loadavg()[0]!, 2), machineCpu, othersCpu, backgroundCpu: background },
    };
    for (const r of receivers) rmSync(r.framesFile, { force: true });
    return record;
  } finally {
    await Promise.all(children.map((child) => child.kill()));
  }
}

function describeLink(link: LinkSpec, bitrate: number): string {
  const rate = link.fraction === undefined ? 'no rate limit' : `${mbit(bitrate * link.fraction)} Mbit/s (${round(link.fraction * 100, 0)} %)`;
  return `${rate}, ${2 * ONE_WAY_DELAY_MS} ms RTT${link.schedule ? `, schedule ${link.schedule(bitrate)}` : ''}`;
}

/** One figure of the table. */
interface Figure {
  cell: string;
  figure: string;
  value: string;
  target: string;
  met: boolean | null;
  conditions: string;
}

function conditionsText(c: Conditions): string {
  return `load ${c.load1.toFixed(2)}; others ${c.othersCpu ?? '?'} %`;
}

/** The figures of one cell, with their targets. */
function figuresOf(cell: CellRecord, lastS: number, direct: CellRecord | undefined): { figures: Figure[]; details: Record<string, unknown> } {
  const end = cell.t0 + cell.seconds * 1000;
  const from = end - lastS * 1000;
  const figures: Figure[] = [];
  const conditions = conditionsText(cell.conditions);
  const add = (figure: string, value: string, target = '-', met: boolean | null = null) => figures.push({ cell: cell.spec.id, figure, value, target, met, conditions });
  const details: Record<string, unknown> = { title: cell.spec.title, conditions: cell.conditions, receivers: {} };
  for (const r of cell.receivers) {
    const w = windowFigures(r.frames, from, end);
    const flow = flowState(cell.viewerLines, r.name, from, end);
    const use = Number.isFinite(r.linkBytesPerSecond) ? linkUse(r.proxyLines, from, end, r.linkBytesPerSecond) : undefined;
    const who = cell.receivers.length > 1 ? `${r.name}: ` : '';
    const rungs = Object.entries(w.rungs).map(([rung, n]) => `${rung}:${n}`).join(' ');
    const drops = r.result.senderDropped;
    const base = `${who}last ${lastS} s`;
    (details['receivers'] as Record<string, unknown>)[r.name] = { link: r.link, last: w, flow, linkUse: use, dropped: drops, gaps: r.result.gaps, corrupt: r.result.corrupt, rateChanges: r.rateChanges };
    const id = cell.spec.id;
    const fpsValue = `${w.fps} fps (rungs ${rungs || '-'}; ${drops} dropped, ${r.result.gaps} gaps)`;
    const latency = `p50 ${w.p50} / p99 ${w.p99} / max ${w.max} ms`;
    if (id === '55') {
      add(`${base}: p99 latency`, latency, `p99 <= ${TARGETS.at55.p99} ms`, w.p99 <= TARGETS.at55.p99);
      add(`${base}: decoded fps`, fpsValue, `>= ${TARGETS.at55.fps} fps`, w.fps >= TARGETS.at55.fps);
      add(`${base}: link use`, `${round((use?.share ?? NaN) * 100, 1)} %`, `>= ${TARGETS.at55.use * 100} %`, (use?.share ?? 0) >= TARGETS.at55.use);
    } else if (id === '25' || (id === 'beside' && r.name === 'slow')) {
      add(`${base}: p99 latency`, latency, `p99 <= ${TARGETS.at25.p99} ms`, w.p99 <= TARGETS.at25.p99);
      add(`${base}: decoded fps`, fpsValue, `>= ${TARGETS.at25.fps} fps`, w.fps >= TARGETS.at25.fps);
      if (use) add(`${base}: link use`, `${round(use.share * 100, 1)} %`);
    } else if (id === 'direct' || (id === 'beside' && r.name === 'direct')) {
      const alone = id === 'beside' && direct ? windowFigures(direct.receivers[0]!.frames, direct.t0 + (direct.seconds - lastS) * 1000, direct.t0 + direct.seconds * 1000) : undefined;
      const vs = alone ? ` (alone: ${alone.fps} fps, p99 ${alone.p99} ms)` : '';
      add(`${base}: decoded fps`, `${fpsValue}${vs}`, `>= ${TARGETS.direct.fps} fps`, w.fps >= TARGETS.direct.fps);
      add(`${base}: p99 latency`, `${latency}${vs}`, `p99 < ${TARGETS.direct.p99} ms`, w.p99 < TARGETS.direct.p99);
    } else if (id === 'pause' && cell.resumedAt !== undefined) {
      const resumed = cell.resumedAt;
      const after = windowFigures(r.frames, resumed, resumed + TARGETS.pause.withinMs);
      const later = windowFigures(r.frames, resumed + TARGETS.pause.withinMs, end);
      const back = recoveryMs(r.frames, resumed, end, TARGETS.pause.p99);
      add('2 s after resuming', `${after.frames} frames, p50 ${after.p50} / p99 ${after.p99} / max ${after.max} ms`);
      add('time until latency < 150 ms for good', `${back} ms after SIGCONT`, `<= ${TARGETS.pause.withinMs} ms`, back <= TARGETS.pause.withinMs);
      add(`from 2 s after resuming to the end`, `${later.fps} fps, p50 ${later.p50} / p99 ${later.p99} ms`, `p99 < ${TARGETS.pause.p99} ms`, later.p99 < TARGETS.pause.p99);
      add(`${base}`, `${fpsValue}, ${latency}`);
    } else if (id === 'drop') {
      const recovered = r.rateChanges.find((c) => /phase 3 of 3|schedule over/.test(c.line))?.at;
      const dropped = r.rateChanges.find((c) => /phase 2 of 3/.test(c.line))?.at;
      if (recovered !== undefined && dropped !== undefined) {
        const during = windowFigures(r.frames, dropped + 1000, recovered);
        const back = fullQualityAfterMs(r.frames, recovered, end, TARGETS.recover.minFramesPerSecond);
        add('while at 30 % (after its first second)', `${during.fps} fps, rungs ${Object.entries(during.rungs).map(([k, n]) => `${k}:${n}`).join(' ')}, p99 ${during.p99} ms`);
        add('time until rung 0 and 30 fps after recovery', `${back} ms`, `<= ${TARGETS.recover.withinMs} ms`, back <= TARGETS.recover.withinMs);
        add('after recovery, p99 latency', `${windowFigures(r.frames, recovered, end).p99} ms`);
      } else {
        add('rate changes', `not seen (${r.rateChanges.map((c) => c.line).join('; ')})`, 'drop and recovery', false);
      }
      add(`${base}`, `${fpsValue}, ${latency}`);
    } else {
      add(`${base}: latency`, latency);
      add(`${base}: decoded fps`, fpsValue);
      if (use) add(`${base}: link use`, `${round(use.share * 100, 1)} %`);
    }
    if (r.link !== 'direct' && flow.samples > 0) {
      const capacity = Number.isFinite(flow.capacityBytesPerSecond) ? `${mbit(flow.capacityBytesPerSecond)} Mbit/s` : 'unbounded';
      add(`${base}: sender's flow state (medians)`, `window ${round(flow.windowBytes / 1000, 1)} kB, in flight ${round(flow.inFlightBytes / 1000, 1)} kB (${flow.inFlightFrames} frames), capacity ${capacity}, rung ${flow.rung}`);
    }
    if (r.result.gaps > 0 || r.result.corrupt > 0) add(`${who}undeclared gaps / corrupt`, `${r.result.gaps} / ${r.result.corrupt}`, '0', false);
  }
  return { figures, details };
}

interface TutorialRecord {
  fps: number;
  MBps: number;
  frames: number;
  seconds: number;
  frameBytes: number;
  linkBytesPerSecond: number;
  linkUse: number;
  /** Bytes queued ahead of the newest frame (streamer's send queue + the proxy's socket and buffer), sampled each second. */
  queuedBytesMedian: number;
  conditions: Conditions;
}

/** Send-Q + Recv-Q of the TCP sockets on `port` (both ends of the streamer's connection), from ss. */
function queuedOn(port: number): number {
  try {
    const out = execFileSync('ss', ['-tnH', 'state', 'established', `( sport = :${port} or dport = :${port} )`], { encoding: 'utf8' });
    return out.split('\n').filter(Boolean).reduce((sum, line) => {
      const [recvQ, sendQ] = line.trim().split(/\s+/).map(Number);
      return sum + (recvQ ?? 0) + (sendQ ?? 0);
    }, 0);
  } catch {
    return NaN;
  }
}

async function runTutorialCell(bitrate: number, settings: Settings, python: string, clipFile: string): Promise<TutorialRecord> {
  const background = await settle(settings);
  const port = await freePort();
  const shared = sharedDir(workspaceRoot);
  const children: AppProcess[] = [];
  try {
    const streamer = startProcess(python, [path.join(shared, 'peers', 'seed_streamer.py'), '--port', String(port), '--width', String(WIDTH), '--height', String(HEIGHT), '--frames-file', clipFile], { name: 'seed_streamer' });
    children.push(streamer);
    await streamer.waitForLine(/LISTENING AT/, { timeoutMs: 60_000 });
    const proxy = await startProxy(port, { fraction: 0.5 }, bitrate, settings.burstBytes);
    children.push(proxy.process);
    const started = Date.now();
    const receiver = startProcess(python, [path.join(shared, 'peers', 'seed_receiver.py'), '--port', String(proxy.port), '--duration', String(settings.seconds - 5), '--expect', `${WIDTH}x${HEIGHT}`], { name: 'seed_receiver' });
    children.push(receiver);
    const queued: number[] = [];
    const machineBefore = cpuTimes();
    while (!receiver.exitedWith && Date.now() - started < (settings.seconds + 60) * 1000) {
      await sleep(1000);
      if (Date.now() - started > 5000) queued.push(queuedOn(port) + 64 * 1024);
    }
    const machineCpu = busyBetween(machineBefore, cpuTimes(), cpus().length);
    await receiver.waitForExit(5_000).catch(() => undefined);
    const line = [...receiver.stdoutLines].reverse().find((l) => l.startsWith('{'));
    if (!line) throw new Error(`seed_receiver.py printed no result. Last output:\n${receiver.outputTail()}`);
    const figures = JSON.parse(line) as { fps: number; MBps: number; frames: number; seconds: number; frame_bytes: number };
    const lines = proxy.process.stdoutLines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as ProxyStatsLine);
    const end = Date.now();
    const use = linkUse(lines, end - settings.lastS * 1000, end, proxy.bytesPerSecond);
    queued.sort((a, b) => a - b);
    return {
      fps: figures.fps,
      MBps: figures.MBps,
      frames: figures.frames,
      seconds: figures.seconds,
      frameBytes: figures.frame_bytes,
      linkBytesPerSecond: proxy.bytesPerSecond,
      linkUse: use.share,
      queuedBytesMedian: queued[Math.floor(queued.length / 2)] ?? NaN,
      conditions: { load1: round(loadavg()[0]!, 2), machineCpu, othersCpu: undefined, backgroundCpu: background },
    };
  } finally {
    await Promise.all(children.map((child) => child.kill()));
  }
}

function textTable(figures: Figure[]): string {
  const head = ['cell', 'figure', 'value', 'target', 'met?', 'conditions'];
  const rows = [head, ...figures.map((f) => [f.cell, f.figure, f.value, f.target, f.met === null ? '-' : f.met ? 'yes' : 'NO', f.conditions])];
  const widths = head.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

function markdownTable(figures: Figure[]): string {
  const lines = ['| cell | figure | value | target | met? | conditions |', '|---|---|---|---|---|---|'];
  for (const f of figures) lines.push(`| ${f.cell} | ${f.figure} | ${f.value} | ${f.target} | ${f.met === null ? '-' : f.met ? 'yes' : 'NO'} | ${f.conditions} |`);
  return lines.join('\n');
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      cells: { type: 'string', default: ALL_CELLS.join(',') },
      seconds: { type: 'string', default: '30' },
      last: { type: 'string', default: '10' },
      'drop-base': { type: 'string', default: '1.5' },
      burst: { type: 'string' },
      'quiet-below': { type: 'string', default: '25' },
      'max-wait': { type: 'string', default: '60' },
      out: { type: 'string' },
      python: { type: 'string', default: '/usr/bin/python3' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const number = (name: string, text: string, min: number) => {
    const n = Number(text);
    if (!(Number.isFinite(n) && n >= min)) throw new Error(`--${name} ${JSON.stringify(text)}: expected a number >= ${min}`);
    return n;
  };
  const seconds = number('seconds', values.seconds, 5);
  const lastS = number('last', values.last, 1);
  if (lastS >= seconds) throw new Error(`--last (${lastS}) must be less than --seconds (${seconds})`);
  const dropBase = number('drop-base', values['drop-base'], 0.1);
  const wanted = values.cells.split(',').map((c) => c.trim()).filter(Boolean);
  const specs = wanted.filter((id) => id !== 'direct' && id !== 'tutorial').map((id) => cellSpec(id, dropBase));
  const outDir = path.resolve(values.out ?? path.join(workspaceRoot, 'bench-results'));
  const framesDir = path.join(tmpdir(), 'camstream-bench-frames');
  mkdirSync(outDir, { recursive: true });
  mkdirSync(framesDir, { recursive: true });
  const settings: Settings = {
    seconds,
    lastS,
    quietBelow: number('quiet-below', values['quiet-below'], 0),
    maxWaitS: number('max-wait', values['max-wait'], 0),
    driver: { workspaceRoot, env: {}, warmupS: 0, durationS: 0 },
    framesDir,
    burstBytes: values.burst === undefined ? undefined : number('burst', values.burst, 1),
  };
  const started = new Date();

  log(`direct: ${WIDTH}x${HEIGHT} JPEG q${QUALITY} test pattern at ${FPS} fps, ${seconds} s`);
  const direct = await runCell(cellSpec('direct', dropBase), Infinity, settings);
  const view = direct.sender.viewers[0];
  if (!view?.bytesSent) throw new Error('the direct cell measured no bytes sent: cannot size the links');
  const bitrate = view.bytesSent / direct.sender.seconds;
  log(`stream bitrate (direct, last ${lastS} s, frame messages on the wire): ${mbit(bitrate)} Mbit/s, ${round(direct.sender.payloadBytesMean / 1000, 1)} kB per frame payload`);

  const cells: CellRecord[] = [direct];
  /** Writes the table and files from the cells so far: after every cell, so that a run cut short keeps what it measured. */
  const writeOutputs = (tutorial: TutorialRecord | undefined, quiet: boolean) => {
    const figures: Figure[] = [
      {
        cell: 'direct',
        figure: 'stream bitrate (frame messages, direct link)',
        value: `${mbit(bitrate)} Mbit/s (${round(direct.sender.payloadBytesMean / 1000, 1)} kB per frame)`,
        target: '-',
        met: null,
        conditions: conditionsText(direct.conditions),
      },
    ];
    const details: Record<string, unknown> = {};
    for (const cell of cells) {
      const out = figuresOf(cell, lastS, direct);
      figures.push(...out.figures);
      details[cell.spec.id] = out.details;
    }
    if (tutorial) {
      const ageS = tutorial.queuedBytesMedian / tutorial.linkBytesPerSecond;
      figures.push(
        {
          cell: 'tutorial',
          figure: 'Python pair, raw 720p through the 50 % link',
          value: `${tutorial.fps} fps, ${tutorial.MBps} MB/s (${tutorial.frames} frames in ${tutorial.seconds} s; link use ${round(tutorial.linkUse * 100, 1)} %)`,
          target: '-',
          met: null,
          conditions: conditionsText(tutorial.conditions),
        },
        {
          cell: 'tutorial',
          figure: 'age of a frame on arrival (estimate: bytes queued ahead / link rate)',
          value: `${round(ageS, 1)} s (${round(tutorial.queuedBytesMedian / 1e6, 2)} MB queued in socket buffers and the proxy; a frame is ${round(tutorial.frameBytes / 1e6, 2)} MB)`,
          target: '-',
          met: null,
          conditions: conditionsText(tutorial.conditions),
        },
      );
    }

    const command = `npx nx run bench:slow-link${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
    const header = [
      `Date: ${started.toISOString()}; command: \`${command}\``,
      `Machine: ${cpus().length} cores (${cpus()[0]?.model}), Node ${process.version}`,
      `Stream: ${WIDTH}x${HEIGHT} JPEG q${QUALITY} test pattern at ${FPS} fps, ${mbit(bitrate)} Mbit/s on the wire; links: chaos proxy (own process), --delay ${ONE_WAY_DELAY_MS} (20 ms round trip), rate a fraction of that bitrate, burst ${settings.burstBytes === undefined ? "the proxy's default (16 KiB or 10 ms of the rate)" : `${settings.burstBytes} bytes`}`,
      `Each cell ${seconds} s from the first decoded frame; figures over the last ${lastS} s (pause and drop cells: around the event). Latency: capture (sender) -> decoded (receiver), every decoded frame.`,
      `conditions: 1-minute load average at the end of the cell; others = CPU other programs used during the last ${lastS} s, % of one core (of ${cpus().length * 100}).`,
    ];
    if (!quiet) process.stdout.write(`\n${header.join('\n')}\n\n${textTable(figures)}\n`);
    writeFileSync(path.join(outDir, 'slow-link.md'), `# camstream slow-link cells\n\n${header.map((l) => `${l}  `).join('\n')}\n\n${markdownTable(figures)}\n`);
    writeFileSync(
      path.join(outDir, 'slow-link.json'),
      `${JSON.stringify({ started: started.toISOString(), command, bitrateBytesPerSecond: bitrate, figures, details, tutorial, viewerStats: Object.fromEntries(cells.map((c) => [c.spec.id, c.viewerLines])) }, null, 1)}\n`,
    );
  };
  for (const spec of specs) {
    log(`${spec.id}: ${spec.title}`);
    const cell = await runCell(spec, bitrate, settings);
    cells.push(cell);
    const summary = cell.receivers.map((r) => {
      const w = windowFigures(r.frames, cell.t0 + (seconds - lastS) * 1000, cell.t0 + seconds * 1000);
      return `${r.name} ${w.fps} fps, p99 ${w.p99} ms, rungs ${JSON.stringify(w.rungs)}`;
    });
    log(`  ${summary.join('; ')} (${conditionsText(cell.conditions)})`);
    writeOutputs(undefined, true);
  }
  let tutorial: TutorialRecord | undefined;
  if (wanted.includes('tutorial')) {
    log('tutorial: the Python pair (raw 720p) through the 50 % link');
    const shared = sharedDir(workspaceRoot);
    const clip = ensureClip({ python: values.python, shared, framesDir, width: WIDTH, height: HEIGHT });
    try {
      tutorial = await runTutorialCell(bitrate, settings, values.python, clip);
      log(`  ${tutorial.fps} fps, ${tutorial.MBps} MB/s`);
    } catch (error) {
      // The other cells' figures still count.
      log(`  the tutorial cell failed: ${(error as Error).message}`);
    }
  }

  writeOutputs(tutorial, false);
  log(`wrote ${path.relative(process.cwd(), outDir) || outDir}/slow-link.md, slow-link.json`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`slow-link: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
