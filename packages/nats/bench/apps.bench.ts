// The apps over NATS, as processes on this machine (bundled apps: run `node scripts/bundle-apps.js`
// or `bash scripts/setup.sh` first):
//  1. one camera, 720p30 JPEG (the sender's test pattern), to 1 and then 8 receivers through one
//     nats-server, and the same 8 receivers over direct TCP beside it: per receiver fps and p99
//     latency (capture to decoded image), the sender's CPU per frame with 1 and with 8 receivers;
//  2. four cameras at 640x480 30 fps into one hub receiver (--camera '*'): per camera fps and p99.
// CPU (share of one core) and RSS of every process. Prints a table per part.
//   node -r ts-node/register/transpile-only packages/nats/bench/apps.bench.ts [window seconds, default 10]
import { readFileSync } from 'node:fs';
import { type AppProcess, startApp, startNatsServer } from '@camstream/testkit';

const WINDOW_S = Number(process.argv[2] ?? 10);
const WARM_UP_MS = 4000;
const headless = { DISPLAY: undefined, WAYLAND_DISPLAY: undefined };
const TICKS_PER_SECOND = 100;

interface ProcessSample {
  cpuSeconds: number;
  rssBytes: number;
}

function sample(pid: number): ProcessSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { cpuSeconds, rssBytes: rss ? Number(rss[1]) * 1024 : 0 };
}

interface Figures {
  kind: string;
  camera: string;
  fps: number;
  frames: number;
  latencyMs: { p50: number; p99: number } | null;
  gaps: number;
  lostInTransport: number;
  senderDropped: number;
  skipped: number;
}

function intervals(receiver: AppProcess, fromLine: number): Figures[] {
  return receiver.stdoutLines
    .slice(fromLine)
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Figures)
    .filter((figures) => figures.kind === 'interval');
}

/** Figures of one receiver (or one camera of a hub) over the window: fps, and the worst and median per-second p99. */
function summarize(lines: Figures[], seconds: number) {
  if (lines.length < 2) return { fps: 0, p99Worst: NaN, p99Median: NaN, p50Median: NaN, gaps: 0, lost: 0, dropped: 0, skipped: 0 };
  const first = lines[0]!;
  const last = lines.at(-1)!;
  const p99s = lines.map((l) => l.latencyMs?.p99 ?? NaN).filter(Number.isFinite).sort((a, b) => a - b);
  const p50s = lines.map((l) => l.latencyMs?.p50 ?? NaN).filter(Number.isFinite).sort((a, b) => a - b);
  return {
    fps: (last.frames - first.frames) / (seconds * (lines.length - 1) / lines.length),
    p99Worst: p99s.at(-1) ?? NaN,
    p99Median: p99s[Math.floor(p99s.length / 2)] ?? NaN,
    p50Median: p50s[Math.floor(p50s.length / 2)] ?? NaN,
    gaps: last.gaps - first.gaps,
    lost: last.lostInTransport - first.lostInTransport,
    dropped: last.senderDropped - first.senderDropped,
    skipped: last.skipped - first.skipped,
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `window` seconds after a warm-up; returns CPU and RSS of each process and the receivers' lines in the window. */
async function measure(processes: Record<string, number[]>, receivers: AppProcess[], counter: () => number = () => 0) {
  await sleep(WARM_UP_MS);
  const from = receivers.map((r) => r.stdoutLines.length);
  const countBefore = counter();
  const before = Object.fromEntries(Object.entries(processes).map(([role, pids]) => [role, pids.map(sample)]));
  const startedAt = performance.now();
  await sleep(WINDOW_S * 1000);
  const seconds = (performance.now() - startedAt) / 1000;
  const counted = counter() - countBefore;
  const usage = Object.fromEntries(
    Object.entries(processes).map(([role, pids]) => {
      const after = pids.map(sample);
      const cpu = after.map((a, i) => (a.cpuSeconds - before[role]![i]!.cpuSeconds) / seconds);
      return [role, { count: pids.length, cpuPercentEach: (100 * cpu.reduce((s, c) => s + c, 0)) / pids.length, rssMbEach: after.reduce((s, a) => s + a.rssBytes, 0) / pids.length / 1e6, cpuSeconds: cpu.reduce((s, c) => s + c, 0) * seconds }];
    }),
  );
  return { seconds, usage, counted, lines: receivers.map((r, i) => intervals(r, from[i]!)) };
}

function senderFrames(sender: AppProcess): number {
  const line = sender.stdoutLines.findLast((l) => l.includes('"nats"'));
  return line ? (JSON.parse(line) as { nats: { framesPublished: number } }).nats.framesPublished : 0;
}

function table(rows: Array<Record<string, string | number>>): void {
  const keys = Object.keys(rows[0] ?? {});
  const text = (v: string | number) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(1)) : v);
  console.log(`| ${keys.join(' | ')} |\n|${keys.map(() => '---').join('|')}|`);
  for (const row of rows) console.log(`| ${keys.map((k) => text(row[k]!)).join(' | ')} |`);
}

async function oneCamera(): Promise<void> {
  await using server = await startNatsServer();
  const natsPid = server.process.pid;
  await using sender = startApp('sender', ['--source', 'test', '--size', '1280x720', '--fps', '30', '--codec', 'jpeg', '--port', '0', '--max-viewers', '16', '--stats-json', '--nats', server.url, '--camera', 'bench'], { env: headless });
  const port = /:(\d+)$/.exec(await sender.waitForLine(/^LISTENING AT: /, { stream: 'stdout', timeoutMs: 30_000 }))![1]!;
  const rows: Array<Record<string, string | number>> = [];
  const cpuPerFrame: Record<string, number> = {};
  for (const [label, count, args] of [
    ['NATS, 1 receiver', 1, ['--nats', server.url, '--camera', 'bench']],
    ['NATS, 8 receivers', 8, ['--nats', server.url, '--camera', 'bench']],
    ['TCP, 8 receivers', 8, [`127.0.0.1:${port}`]],
  ] as const) {
    const receivers = Array.from({ length: count }, () => startApp('receiver', [...args, '--display', 'off', '--stats-json'], { env: headless }));
    try {
      const result = await measure({ sender: [sender.pid], receiver: receivers.map((r) => r.pid), 'nats-server': [natsPid] }, receivers, () => senderFrames(sender));
      // Published frames over the window, as the sender's once-a-second stats count them.
      const frames = result.counted;
      const perReceiver = result.lines.map((lines) => summarize(lines, result.seconds));
      const senderCpu = result.usage['sender']!;
      cpuPerFrame[label] = (senderCpu.cpuSeconds * 1000) / Math.max(1, frames);
      rows.push({
        run: label,
        'fps min / median per receiver': `${Math.min(...perReceiver.map((p) => p.fps)).toFixed(1)} / ${perReceiver.map((p) => p.fps).sort((a, b) => a - b)[Math.floor(count / 2)]!.toFixed(1)}`,
        'p99 worst second (ms)': Math.max(...perReceiver.map((p) => p.p99Worst)),
        'p99 median second (ms)': perReceiver.map((p) => p.p99Median).sort((a, b) => a - b)[Math.floor(count / 2)]!,
        'p50 (ms)': perReceiver.map((p) => p.p50Median).sort((a, b) => a - b)[Math.floor(count / 2)]!,
        'gaps / lost / skipped': `${perReceiver.reduce((s, p) => s + p.gaps, 0)} / ${perReceiver.reduce((s, p) => s + p.lost, 0)} / ${perReceiver.reduce((s, p) => s + p.skipped, 0)}`,
        'sender CPU %': senderCpu.cpuPercentEach,
        'sender RSS MB': senderCpu.rssMbEach,
        'receiver CPU % each': result.usage['receiver']!.cpuPercentEach,
        'receiver RSS MB each': result.usage['receiver']!.rssMbEach,
        'nats-server CPU %': result.usage['nats-server']!.cpuPercentEach,
        'nats-server RSS MB': result.usage['nats-server']!.rssMbEach,
      });
    } finally {
      await Promise.all(receivers.map((r) => r.kill()));
    }
  }
  console.log(`\n1 camera 1280x720 30 fps JPEG q80 (test pattern), ${WINDOW_S} s windows after ${WARM_UP_MS / 1000} s warm-up:\n`);
  table(rows);
  // CPU per frame from the whole process over the window, over the frames it published in it.
  const one = cpuPerFrame['NATS, 1 receiver']!;
  const eight = cpuPerFrame['NATS, 8 receivers']!;
  console.log(`\nsender CPU per published frame: ${one.toFixed(2)} ms with 1 NATS receiver, ${eight.toFixed(2)} ms with 8 (${(((eight - one) / one) * 100).toFixed(1)} %); ${cpuPerFrame['TCP, 8 receivers']!.toFixed(2)} ms with 8 TCP receivers`);
}

async function fourCameras(): Promise<void> {
  await using server = await startNatsServer();
  const senders = ['cam1', 'cam2', 'cam3', 'cam4'].map((camera) =>
    startApp('sender', ['--source', 'test', '--size', '640x480', '--fps', '30', '--codec', 'jpeg', '--port', '0', '--quiet', '--nats', server.url, '--camera', camera], { env: headless }),
  );
  try {
    for (const sender of senders) await sender.waitForLine(/^LISTENING AT: /, { stream: 'stdout', timeoutMs: 30_000 });
    const hub = startApp('receiver', ['--nats', server.url, '--camera', '*', '--display', 'off', '--stats-json'], { env: headless });
    try {
      const result = await measure({ senders: senders.map((s) => s.pid), hub: [hub.pid], 'nats-server': [server.process.pid] }, [hub]);
      const lines = result.lines[0]!;
      const rows = ['cam1', 'cam2', 'cam3', 'cam4'].map((camera) => {
        const s = summarize(lines.filter((l) => l.camera === camera), result.seconds);
        return { camera, fps: s.fps, 'p99 worst second (ms)': s.p99Worst, 'p99 median second (ms)': s.p99Median, 'p50 (ms)': s.p50Median, 'gaps / lost / skipped': `${s.gaps} / ${s.lost} / ${s.skipped}` };
      });
      console.log(`\n4 cameras 640x480 30 fps JPEG q80 into one hub receiver (--nats --camera '*'), ${WINDOW_S} s window:\n`);
      table(rows);
      console.log('');
      table(Object.entries(result.usage).map(([role, u]) => ({ process: role, count: u.count, 'CPU % each': u.cpuPercentEach, 'RSS MB each': u.rssMbEach })));
    } finally {
      await hub.kill();
    }
  } finally {
    await Promise.all(senders.map((s) => s.kill()));
  }
}

async function main(): Promise<void> {
  console.log(`machine: ${readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? '?'}, ${(await import('node:os')).availableParallelism()} cores`);
  await oneCamera();
  await fourCameras();
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
