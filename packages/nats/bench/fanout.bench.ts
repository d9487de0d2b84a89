// Fan-out through one nats-server: 720p30 JPEG-sized frames (45 KB, as NOTES.md measured for
// 720p30 JPEG q80) from one publisher to 1 and 8 subscribers, each in a process of its own role so
// that CPU is measured per side. Prints per-subscriber fps and latency (publish to receive, same
// host), the publisher's CPU per frame, and nats-server's CPU and RSS.
//   npx nx run nats:bench            (or: node -r ts-node/register/transpile-only packages/nats/bench/fanout.bench.ts [seconds])
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { prepareFrame, type StreamDescription } from '@camstream/protocol';
import { type AppProcess, startNatsServer, startProcess } from '@camstream/testkit';
import { CameraPublisher, CameraSubscriber, connectNats } from '../src';

const STREAM: StreamDescription = { width: 1280, height: 720, fps: 30, pixelFormat: 'bgr24', encoding: 'jpeg', quality: 80 };
const FRAME_BYTES = 45_000;
const CAMERA = 'bench';
const now = () => performance.timeOrigin + performance.now();

interface PublisherResult {
  frames: number;
  dropped: number;
  cpuMsPerFrame: number;
  /** The same paced loop, preparing frames without publishing them. */
  baselineMsPerFrame: number;
}

interface SubscriberResult {
  fps: number;
  frames: number;
  lost: number;
  gaps: number;
  p50: number;
  p99: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function publisherRole(url: string, seconds: number, secret: string | undefined): Promise<void> {
  const link = await connectNats({ url, name: 'bench publisher' });
  const publisher = await CameraPublisher.start(link, { camera: CAMERA, stream: STREAM, ...(secret ? { secret } : {}) });
  // A few distinct payloads, as an encoder's output would be; the CRC and signature cost is per frame all the same.
  const payloads = Array.from({ length: 8 }, () => randomBytes(FRAME_BYTES));
  /** CPU ms per frame of a paced 30 fps loop that prepares every frame and publishes it, or not. */
  const pacedLoop = async (frames: number, firstSeq: number, publish: boolean): Promise<number> => {
    const start = performance.now();
    const cpuBefore = process.cpuUsage();
    for (let i = 0; i < frames; i++) {
      const due = start + (i * 1000) / STREAM.fps;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      const frame = prepareFrame(payloads[i % payloads.length]!, { seq: firstSeq + i, captureTime: now(), width: 1280, height: 720, channels: 3, encoding: 'jpeg' });
      if (publish) publisher.publishFrame(frame);
    }
    if (publish) await link.connection.flush();
    const cpu = process.cpuUsage(cpuBefore);
    return (cpu.user + cpu.system) / 1000 / frames;
  };
  // The same loop without publishing first: what the process costs anyway (timers, frame headers and CRCs, GC).
  const baselineMsPerFrame = await pacedLoop(Math.round(Math.min(seconds, 5) * STREAM.fps), 0, false);
  const total = Math.round(seconds * STREAM.fps);
  process.stdout.write('publishing\n');
  const cpuMsPerFrame = await pacedLoop(total, 0, true);
  const result: PublisherResult = { frames: publisher.stats.framesPublished, dropped: publisher.stats.framesDropped, cpuMsPerFrame, baselineMsPerFrame };
  process.stdout.write(`result ${JSON.stringify(result)}\n`);
  await publisher.close();
  await link.close();
}

async function subscribersRole(url: string, count: number, secret: string | undefined): Promise<void> {
  const latencies: number[][] = Array.from({ length: count }, () => []);
  const firstAt: number[] = [];
  const lastAt: number[] = [];
  const subscribers: CameraSubscriber[] = [];
  const links = [];
  for (let i = 0; i < count; i++) {
    const link = await connectNats({ url, name: `bench subscriber ${i}` });
    links.push(link);
    subscribers.push(
      await CameraSubscriber.start(link, {
        cameras: [CAMERA],
        ...(secret ? { secret } : {}),
        onFrame: (frame) => {
          latencies[i]!.push(frame.arrivedAt - frame.header.captureTime);
          firstAt[i] ??= frame.arrivedAt;
          lastAt[i] = frame.arrivedAt;
        },
      }),
    );
  }
  process.stdout.write('ready\n');
  await new Promise<void>((resolve) => process.once('SIGTERM', () => resolve()));
  const results: SubscriberResult[] = subscribers.map((subscriber, i) => {
    const stats = subscriber.statsOf(CAMERA);
    const sorted = [...latencies[i]!].sort((a, b) => a - b);
    const spanS = ((lastAt[i] ?? 0) - (firstAt[i] ?? 0)) / 1000;
    return { frames: sorted.length, fps: spanS > 0 ? (sorted.length - 1) / spanS : 0, lost: stats?.lostInTransport ?? 0, gaps: stats?.undeclaredGaps ?? 0, p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
  });
  process.stdout.write(`result ${JSON.stringify(results)}\n`);
  await Promise.all(subscribers.map((subscriber) => subscriber.close()));
  await Promise.all(links.map((link) => link.close()));
}

/** CPU seconds (user + system) and RSS of a process, from /proc. */
function processUsage(pid: number): { cpuS: number; rssMb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  return { cpuS: ticks / 100, rssMb: rssKb / 1024 };
}

function childArgs(...args: string[]): string[] {
  return [...process.execArgv, __filename, ...args];
}

async function resultOf<T>(child: AppProcess): Promise<T> {
  const line = await child.waitForLine(/^result /, { stream: 'stdout', timeoutMs: 120_000 });
  return JSON.parse(line.slice('result '.length)) as T;
}

async function run(subscriberCount: number, seconds: number, secret: string | undefined): Promise<void> {
  await using server = await startNatsServer();
  const serverPid = server.process.pid;
  const subscribers = startProcess(process.execPath, childArgs('--role', 'subscribers', server.url, String(subscriberCount), secret ?? ''), { name: 'bench subscribers' });
  await subscribers.waitForLine(/^ready$/, { stream: 'stdout', timeoutMs: 60_000 });
  const publisher = startProcess(process.execPath, childArgs('--role', 'publisher', server.url, String(seconds), secret ?? ''), { name: 'bench publisher' });
  await publisher.waitForLine(/^publishing$/, { stream: 'stdout', timeoutMs: 60_000 });
  const started = performance.now();
  const before = processUsage(serverPid);
  let maxRss = before.rssMb;
  const sampler = setInterval(() => (maxRss = Math.max(maxRss, processUsage(serverPid).rssMb)), 250);
  const published = await resultOf<PublisherResult>(publisher);
  const elapsedS = (performance.now() - started) / 1000;
  clearInterval(sampler);
  const after = processUsage(serverPid);
  subscribers.signal('SIGTERM');
  const received = await resultOf<SubscriberResult[]>(subscribers);
  await publisher.waitForExit(10_000);
  await subscribers.waitForExit(10_000);

  const label = `${subscriberCount} subscriber${subscriberCount === 1 ? '' : 's'}${secret ? ', signed' : ''}`;
  console.log(`\n${label}: ${published.frames} frames of ${FRAME_BYTES} bytes at ${STREAM.fps} fps (${published.dropped} dropped by the publisher)`);
  console.log(`  publisher CPU: ${published.cpuMsPerFrame.toFixed(3)} ms per frame (the same paced loop without publishing: ${published.baselineMsPerFrame.toFixed(3)} ms)`);
  console.log(`  nats-server: ${(((after.cpuS - before.cpuS) / elapsedS) * 100).toFixed(1)} % of a core, RSS ${before.rssMb.toFixed(1)} -> max ${maxRss.toFixed(1)} MB`);
  for (const [i, result] of received.entries()) {
    console.log(`  subscriber ${i}: ${result.fps.toFixed(1)} fps, ${result.frames} frames, latency p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms, lost ${result.lost}, undeclared gaps ${result.gaps}`);
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--role') {
    const [, role, url, arg, secret] = args;
    if (role === 'publisher') return publisherRole(url!, Number(arg), secret || undefined);
    if (role === 'subscribers') return subscribersRole(url!, Number(arg), secret || undefined);
    throw new Error(`unknown role ${role}`);
  }
  const seconds = Number(args[0] ?? 10);
  console.log(`NATS fan-out bench: one nats-server, ${seconds} s per run, ${FRAME_BYTES}-byte frames (720p30 JPEG q80 size)`);
  await run(1, seconds, undefined);
  await run(8, seconds, undefined);
  await run(8, seconds, 'bench secret');
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
