/*
 * The receiver side of one bench cell, as its own process: what `camstream-receiver` does with
 * no window, recorder or browser: receive() checks every frame (sequence, CRC-32, sizes) and
 * decodes it with OpenCVCodec (JPEG to BGR pixels; raw frames are wrapped, not copied), latest
 * wins when decoding falls behind.
 *
 *   node -r ts-node/register/transpile-only packages/bench/src/receiver-driver.ts --port P
 *     [--host 127.0.0.1] [--name bench-1] [--warmup S --duration S] [--frames-out FILE]
 *
 * Prints "STREAMING" at the first frame. The measured window starts on SIGUSR2 and ends on
 * SIGTERM/SIGINT (or, standalone, --warmup seconds after the first frame and --duration seconds
 * later); then it prints one BENCH-RESULT line and exits. With --frames-out it also writes, at the
 * end, every decoded frame since the first as one JSON line each: when it was decoded (wall clock,
 * ms since the epoch), its capture -> decoded latency and the rung it came on (the slow-link cells).
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { FrameCodec } from '@camstream/media';
import { OpenCVCodec } from '@camstream/opencv';
import { receive, ReceiverStats } from '@camstream/receiver';
import { percentile } from './percentile';
import { markWindow, onControlSignals, printResult, round, windowSince, type WindowMark } from './usage';

/** One decoded frame, for --frames-out. */
interface DecodedFrame {
  /** Wall clock when it was decoded, ms since the epoch. */
  at: number;
  /** Capture (sender's clock) -> decoded. */
  latencyMs: number;
  /** The rung of the latest frame received when it was decoded (decoding is latest-wins). */
  rung: number;
}

/** Enough for 30 minutes at 30 fps; past that the log stops growing. */
const MAX_LOGGED_FRAMES = 54_000;

/**
 * ReceiverStats that also counts decoded frames exactly (its snapshots give rates) and, when
 * asked, keeps every decoded frame's time, latency and rung.
 */
class CountingStats extends ReceiverStats {
  decoded = 0;
  private lastRung = 0;
  readonly frames: DecodedFrame[] | undefined;

  constructor(keepFrames: boolean) {
    super();
    this.frames = keepFrames ? [] : undefined;
  }

  override frameReceived(figures: Parameters<ReceiverStats['frameReceived']>[0]): void {
    this.lastRung = figures.rung;
    super.frameReceived(figures);
  }

  override frameDecoded(latencyMs: number): void {
    this.decoded++;
    if (this.frames && this.frames.length < MAX_LOGGED_FRAMES) {
      this.frames.push({ at: Math.round((performance.timeOrigin + performance.now()) * 10) / 10, latencyMs: Math.round(latencyMs * 100) / 100, rung: this.lastRung });
    }
    super.frameDecoded(latencyMs);
  }
}

interface Counters {
  received: number;
  decoded: number;
  bytes: number;
  senderDropped: number;
  skipped: number;
  gaps: number;
  corrupt: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string' },
      name: { type: 'string', default: `bench-receiver-${process.pid}` },
      warmup: { type: 'string' },
      duration: { type: 'string' },
      'frames-out': { type: 'string' },
    },
  });
  const port = Number(values.port);
  if (!(port > 0)) throw new Error('need --port');

  const framesOut = values['frames-out'];
  const stats = new CountingStats(framesOut !== undefined);
  const stop = new AbortController();
  let received = 0;
  let bytes = 0;
  let encoding = '';
  let size = '';
  const counters = (): Counters => ({
    received,
    decoded: stats.decoded,
    bytes,
    senderDropped: stats.sequence.declaredDrops,
    skipped: stats.skipped,
    gaps: stats.sequence.undeclaredGaps,
    corrupt: stats.corrupt,
  });
  let window: { mark: WindowMark; counters: Counters } | undefined;
  /** Capture -> received and checked (before decoding), in the window: the transport's share of the latency. */
  const arrival: number[] = [];
  /** Wall time of each codec.decode call in the window (thread pool queueing included). */
  const decodeTimes: number[] = [];
  const opencv = new OpenCVCodec();
  const codec: FrameCodec = {
    encode: (image, encoding, options) => opencv.encode(image, encoding, options),
    resize: (image, width, height, into) => opencv.resize(image, width, height, into),
    decode: async (payload, encoding, shape, into) => {
      const started = performance.now();
      const image = await opencv.decode(payload, encoding, shape, into);
      if (decodeTimes.length < 100_000) decodeTimes.push(performance.now() - started);
      return image;
    },
  };
  let reported = false;
  const log: string[] = [];

  const startWindow = () => {
    stats.takeInterval(); // latency percentiles from here on
    arrival.length = 0;
    decodeTimes.length = 0;
    window = { mark: markWindow(), counters: counters() };
  };
  const report = (outcome: string) => {
    if (reported) return;
    reported = true;
    const start = window ?? { mark: markWindow(), counters: { received: 0, decoded: 0, bytes: 0, senderDropped: 0, skipped: 0, gaps: 0, corrupt: 0 } };
    const interval = stats.takeInterval();
    const usage = windowSince(start.mark);
    const now = counters();
    const delta = (key: keyof Counters) => now[key] - start.counters[key];
    const perSecond = (n: number) => (usage.seconds > 0 ? round(n / usage.seconds, 1) : 0);
    printResult({
      role: 'receiver',
      outcome,
      windowMarked: window !== undefined,
      encoding,
      size,
      received: delta('received'),
      decoded: delta('decoded'),
      receivedFps: perSecond(delta('received')),
      decodedFps: perSecond(delta('decoded')),
      MBps: usage.seconds > 0 ? round(delta('bytes') / usage.seconds / 1e6, 1) : 0,
      latencyMs: interval.latencyMs,
      arrivalLatencyMs: arrival.length ? { p50: round(percentile(arrival, 50), 2), p99: round(percentile(arrival, 99), 2) } : null,
      decodeMs: decodeTimes.length ? { p50: round(percentile(decodeTimes, 50), 2), p99: round(percentile(decodeTimes, 99), 2) } : null,
      senderDropped: delta('senderDropped'),
      skipped: delta('skipped'),
      gaps: delta('gaps'),
      corrupt: delta('corrupt'),
      ...usage,
      ...(outcome === 'stopped' ? {} : { log: log.slice(-5) }),
    });
    if (framesOut !== undefined && stats.frames) writeFileSync(framesOut, stats.frames.map((f) => JSON.stringify(f)).join('\n') + '\n');
  };

  onControlSignals({
    start: startWindow,
    stop: () => {
      report('stopped');
      stop.abort();
    },
  });

  const warmupS = values.warmup === undefined ? undefined : Number(values.warmup);
  const durationS = values.duration === undefined ? undefined : Number(values.duration);
  const onFirstFrame = () => {
    process.stdout.write('STREAMING\n');
    if (durationS !== undefined) {
      setTimeout(() => {
        startWindow();
        setTimeout(() => {
          report('stopped');
          stop.abort();
        }, durationS * 1000);
      }, (warmupS ?? 0) * 1000);
    }
  };

  const result = await receive({
    host: values.host,
    port,
    name: values.name,
    codec,
    openSinks: async () => [],
    onFrame: (header, payload) => {
      if (received === 0) {
        encoding = header.encoding;
        size = `${header.width}x${header.height}`;
        onFirstFrame();
      }
      received++;
      bytes += payload.length;
      if (arrival.length < 100_000) arrival.push(performance.timeOrigin + performance.now() - header.captureTime);
    },
    // onFrame keeps nothing: payloads may land in reused buffers, as in camstream-receiver.
    onFrameKeepsPayload: false,
    reconnect: false,
    stats,
    log: (line) => log.push(line),
    signal: stop.signal,
  });
  report(result.outcome === 'failed' ? `failed: ${result.error.message}` : result.outcome);
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`receiver-driver: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
