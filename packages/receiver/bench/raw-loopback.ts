/*
 * Raw frames flat out over loopback: how many frames per second the receiver takes, and the CPU
 * it spends per frame (issue 10, item 6). Figures, not a test.
 *
 *   node -r ts-node/register/transpile-only packages/receiver/bench/raw-loopback.ts \
 *     [--sizes 640x480,1280x720,1920x1080] [--seconds 5] [--warmup 1] [--repeat 1] [--flow on|off]
 *
 * For each size it starts two processes: a sender (the protocol's SenderSession on a socket,
 * writing 8 pre-rendered raw frames in turn as fast as the socket takes them; with --flow on
 * (default) only while the flow-control window has room, as the reference sender does) and a
 * receiver (receive() with no sinks: every frame is checked, acknowledged and "decoded", which
 * for raw frames is wrapping the payload). After the warm-up the receiver measures its received
 * and shown frames, its CPU time (user + system, all threads) and its peak RSS; "others" is the
 * CPU the rest of the machine used meanwhile (from /proc/stat), in % of one core.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { OpenCVCodec } from '@camstream/opencv';
import { crc32, encodeMessage, MessageDecoder, SenderSession, type FrameHeader, type ProtocolError } from '@camstream/protocol';
import { renderFakeFrame } from '@camstream/testkit';
import type * as Receiver from '../src';
import { rawStream } from '../test/test-sender';

const RESULT = 'RESULT ';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      role: { type: 'string', default: 'orchestrator' },
      sizes: { type: 'string', default: '640x480,1280x720,1920x1080' },
      size: { type: 'string' },
      seconds: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      repeat: { type: 'string', default: '1' },
      flow: { type: 'string', default: 'on' },
      port: { type: 'string' },
      'cpu-prof': { type: 'string' },
      'sender-prof': { type: 'string' },
    },
  });
  if (values.role === 'sender') return runSender(parseSize(values.size!), values.flow !== 'off');
  if (values.role === 'receiver') return runReceiver(Number(values.port), Number(values.warmup), Number(values.seconds));

  const rows: string[] = [];
  for (let run = 0; run < Number(values.repeat); run++) {
    for (const size of values.sizes.split(',')) {
      const result = await cell(size, values);
      rows.push(
        `| ${size} | ${values.flow} | ${result.receivedFps} | ${result.shownFps} | ${result.cpuPercent} | ${result.cpuMsPerFrame} | ${result.senderCpuPercent} | ${result.othersCpuPercent} | ${result.maxRssMB} | ${result.latencyP50} |`,
      );
      process.stdout.write(`${rows[rows.length - 1]}\n`);
    }
  }
  process.stdout.write(
    ['', '| size | flow | received fps | shown fps | receiver CPU % | receiver CPU ms/frame | sender CPU % | others CPU % | receiver peak RSS MB | latency p50 ms |', '|---|---|---|---|---|---|---|---|---|---|', ...rows, ''].join('\n'),
  );
}

interface CellResult {
  receivedFps: number;
  shownFps: number;
  cpuPercent: number;
  cpuMsPerFrame: number;
  senderCpuPercent: number;
  othersCpuPercent: number;
  maxRssMB: number;
  latencyP50: number | string;
}

async function cell(size: string, values: { seconds: string; warmup: string; flow: string; 'cpu-prof'?: string | undefined; 'sender-prof'?: string | undefined }): Promise<CellResult> {
  const self = path.resolve(__filename);
  const node = (role: string, args: string[], profile?: string) =>
    spawn(process.execPath, [...(profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : []), '-r', 'ts-node/register/transpile-only', self, '--role', role, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, TS_NODE_PROJECT: path.join(__dirname, '../tsconfig.json') },
    });
  const sender = node('sender', ['--size', size, '--flow', values.flow], values['sender-prof']);
  const port = await new Promise<number>((resolve, reject) => {
    let text = '';
    sender.stdout.on('data', (d: Buffer) => {
      text += d.toString();
      const match = /PORT (\d+)/.exec(text);
      if (match) resolve(Number(match[1]));
    });
    sender.once('exit', () => reject(new Error('the sender exited before listening')));
  });
  const receiver = node('receiver', ['--port', String(port), '--warmup', values.warmup, '--seconds', values.seconds], values['cpu-prof']);
  let output = '';
  receiver.stdout.on('data', (d: Buffer) => (output += d.toString()));
  const startedAt = await new Promise<{ stat: number[]; wall: number }>((resolve) => {
    const onData = () => {
      if (!output.includes('WINDOW')) return;
      receiver.stdout.off('data', onData);
      sender.kill('SIGUSR2');
      resolve({ stat: procStat(), wall: performance.now() });
    };
    receiver.stdout.on('data', onData);
  });
  await new Promise((resolve) => receiver.once('exit', resolve));
  const endedStat = procStat();
  const wallS = (performance.now() - startedAt.wall) / 1000;
  sender.kill('SIGTERM');
  const senderCpuPercent = await new Promise<number>((resolve) => {
    let text = '';
    sender.stdout.on('data', (d: Buffer) => (text += d.toString()));
    sender.once('exit', () => resolve(Number(/SENDER-CPU ([\d.]+)/.exec(text)?.[1] ?? NaN)));
  });
  const line = output.split('\n').find((l) => l.startsWith(RESULT));
  if (!line) throw new Error(`no result from the receiver: ${output}`);
  const result = JSON.parse(line.slice(RESULT.length)) as Omit<CellResult, 'senderCpuPercent' | 'othersCpuPercent'> & { cpuSeconds: number; seconds: number };
  const busyS = (endedStat[0]! - startedAt.stat[0]!) / 100;
  const othersCpuPercent = round(((busyS - result.cpuSeconds - (senderCpuPercent / 100) * wallS) / wallS) * 100, 1);
  return { ...result, senderCpuPercent, othersCpuPercent };
}

/** Busy jiffies of the whole machine (user, nice, system, irq, softirq, steal). */
function procStat(): number[] {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = cpu as [number, number, number, number, number, number, number, number];
  return [user + nice + system + irq + softirq + steal];
}

function parseSize(size: string): { width: number; height: number } {
  const [width, height] = size.split('x').map(Number) as [number, number];
  return { width, height };
}

/** Writes raw frames as fast as the socket takes them (and, with flow control, the window allows). */
async function runSender({ width, height }: { width: number; height: number }, flow: boolean): Promise<void> {
  const images = Array.from({ length: 8 }, (_, i) => renderFakeFrame(i, width, height).data);
  const checksums = images.map((image) => crc32(image));
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    const session = new SenderSession({ stream: rawStream(width, height, { fps: 0 }), now: performance.now() });
    const decoder = new MessageDecoder({ maxMessageBytes: 64 * 1024 });
    let wake: (() => void) | undefined;
    const handle = (events: ReturnType<SenderSession['receive']>) => {
      for (const event of events) {
        if (event.type === 'send') socket.write(encodeMessage(event.header).head);
        if (event.type === 'closed') socket.end();
      }
      wake?.();
    };
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const { header } of decoder.push(chunk)) handle(session.receive(header, performance.now()));
      } catch (error) {
        handle(session.fail(error as ProtocolError));
      }
    });
    socket.on('close', () => wake?.());
    const pump = async () => {
      for (let seq = 0; !socket.destroyed && !session.closed; seq++) {
        const payload = images[seq % images.length]!;
        const header: FrameHeader = { type: 'frame', seq, captureTime: Date.now(), width, height, channels: 3, encoding: 'raw-bgr', payloadLength: payload.length, crc32: checksums[seq % images.length]!, dropped: 0 };
        const { head } = encodeMessage(header, payload);
        const bytes = head.length + payload.length;
        while (flow && !session.canSend(bytes) && !socket.destroyed) await new Promise<void>((resolve) => (wake = resolve));
        if (socket.destroyed || session.closed) return;
        session.frameSent(seq, bytes, performance.now());
        socket.cork();
        socket.write(head);
        const more = socket.write(payload);
        socket.uncork();
        if (!more) await drained(socket);
      }
    };
    const waitForJoin = () => (session.streaming ? void pump() : setImmediate(waitForJoin));
    waitForJoin();
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`PORT ${(server.address() as net.AddressInfo).port}\n`));
  const cpuMicros = () => process.resourceUsage().userCPUTime + process.resourceUsage().systemCPUTime;
  let mark = { wall: performance.now(), cpu: cpuMicros() };
  process.on('SIGUSR2', () => (mark = { wall: performance.now(), cpu: cpuMicros() }));
  process.once('SIGTERM', () => {
    const percent = (cpuMicros() - mark.cpu) / 1e3 / (performance.now() - mark.wall) * 100;
    process.stdout.write(`SENDER-CPU ${round(percent, 1)}\n`, () => process.exit(0));
  });
}

function drained(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      socket.off('drain', done).off('close', done);
      resolve();
    };
    socket.on('drain', done).on('close', done);
  });
}

/** receive() with no sinks, measured over a window after the warm-up. */
async function runReceiver(port: number, warmupS: number, seconds: number): Promise<void> {
  // RECEIVER_SRC: another copy of the receiver's sources (e.g. an older commit's), to compare.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { receive, ReceiverStats } = require(process.env.RECEIVER_SRC ?? '../src') as typeof Receiver;
  const stats = new ReceiverStats();
  const stop = new AbortController();
  let first = true;
  const measure = () => {
    stats.takeInterval();
    const usage = process.resourceUsage();
    const mark = { wall: performance.now(), cpu: usage.userCPUTime + usage.systemCPUTime, frames: stats.summary().frames, shown: stats.summary().shown };
    process.stdout.write('WINDOW\n');
    setTimeout(() => {
      const interval = stats.takeInterval();
      const end = process.resourceUsage();
      const wallS = (performance.now() - mark.wall) / 1000;
      const cpuS = (end.userCPUTime + end.systemCPUTime - mark.cpu) / 1e6;
      const summary = stats.summary();
      const frames = summary.frames - mark.frames;
      process.stdout.write(
        `${RESULT}${JSON.stringify({
          seconds: round(wallS, 2),
          receivedFps: round(frames / wallS, 1),
          shownFps: round((summary.shown - mark.shown) / wallS, 1),
          cpuSeconds: round(cpuS, 3),
          cpuPercent: round((cpuS / wallS) * 100, 1),
          cpuMsPerFrame: round((cpuS * 1000) / Math.max(1, frames), 2),
          maxRssMB: round((end.maxRSS * 1024) / 1e6, 1),
          latencyP50: interval.latencyMs?.p50 ?? '-',
        })}\n`,
      );
      stop.abort();
    }, seconds * 1000);
  };
  const result = await receive({
    host: '127.0.0.1',
    port,
    name: 'raw-loopback bench',
    codec: new OpenCVCodec(),
    openSinks: async () => [],
    onFrame: () => {
      if (!first) return;
      first = false;
      setTimeout(measure, warmupS * 1000);
    },
    onFrameKeepsPayload: false,
    reconnect: false,
    stats,
    log: (line) => process.stderr.write(`[bench receiver] ${line}\n`),
    signal: stop.signal,
  });
  if (result.outcome === 'failed') throw result.error;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

main().catch((error: Error) => {
  process.stderr.write(`raw-loopback: ${error.stack ?? error.message}\n`);
  process.exit(1);
});
