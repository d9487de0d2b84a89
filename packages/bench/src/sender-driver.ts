/*
 * The sender side of one bench cell, as its own process: what `camstream-sender` does
 * (a Broadcast with OpenCVCodec, StreamServer and pumpFrames, wired as its cli.ts wires them), with a
 * pre-loaded synthetic clip as the source.
 *
 *   node -r ts-node/register/transpile-only packages/bench/src/sender-driver.ts \
 *     --frames-file F --width W --height H [--encoding raw-bgr|jpeg] [--quality 80] [--fps 0]
 *     [--viewers 1] [--port 0] [--capture-copy]
 *
 * Prints "LISTENING AT: host:port", waits for --viewers receivers, then streams. SIGUSR2 starts
 * the measured window; SIGTERM/SIGINT ends it, prints one BENCH-RESULT line and exits.
 */
import { parseArgs } from 'node:util';
import type { Encoding } from '@camstream/media';
import { OpenCVCodec } from '@camstream/opencv';
import { Broadcast, pumpFrames, StreamServer } from '@camstream/sender';
import { ClipSource, loadClip } from './frames';
import { markWindow, onControlSignals, printResult, round, windowSince, type WindowMark } from './usage';

interface Counters {
  /** Frames published (encoded for every rung some receiver is on). */
  frames: number;
  /** Time spent encoding them, every rung included. */
  encodeMs: number;
  /** Payload bytes of the stream itself (rung 0), over the frames it was encoded for. */
  bytes: number;
  rung0Frames: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'frames-file': { type: 'string' },
      width: { type: 'string' },
      height: { type: 'string' },
      encoding: { type: 'string', default: 'raw-bgr' },
      quality: { type: 'string', default: '80' },
      fps: { type: 'string', default: '0' },
      viewers: { type: 'string', default: '1' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
      'capture-copy': { type: 'boolean', default: false },
    },
  });
  const width = Number(values.width);
  const height = Number(values.height);
  const encoding = values.encoding as Encoding;
  const quality = Number(values.quality);
  const fps = Number(values.fps);
  const viewers = Number(values.viewers);
  if (!values['frames-file'] || !(width > 0) || !(height > 0)) throw new Error('need --frames-file, --width and --height');
  if (!['raw-bgr', 'jpeg', 'png'].includes(encoding)) throw new Error(`unknown --encoding ${encoding}`);

  const source = new ClipSource(loadClip(values['frames-file'], width, height), fps, values['capture-copy']);
  // Each rung in use is encoded once per frame, whatever the number of receivers on it.
  const broadcast = new Broadcast({
    codec: new OpenCVCodec(),
    stream: {
      width,
      height,
      fps,
      pixelFormat: 'bgr24',
      encoding,
      ...(encoding === 'jpeg' ? { quality } : {}),
      source: source.info.description,
    },
  });
  const server = await StreamServer.listen({
    host: values.host,
    port: Number(values.port),
    broadcast,
    maxViewers: Math.max(16, viewers),
    log: () => undefined,
  });
  process.stdout.write(`LISTENING AT: ${server.address}\n`);

  const stop = new AbortController();
  const total: Counters = { frames: 0, encodeMs: 0, bytes: 0, rung0Frames: 0 };
  let window: { mark: WindowMark; counters: Counters; viewers: Map<number, { sent: number; dropped: number }> } | undefined;
  let reported = false;

  const report = () => {
    if (reported) return;
    reported = true;
    const start = window ?? { mark: markWindow(), counters: { frames: 0, encodeMs: 0, bytes: 0, rung0Frames: 0 }, viewers: new Map() };
    const usage = windowSince(start.mark);
    const frames = total.frames - start.counters.frames;
    const rung0Frames = total.rung0Frames - start.counters.rung0Frames;
    printResult({
      role: 'sender',
      windowMarked: window !== undefined,
      encoding,
      width,
      height,
      fps: usage.seconds > 0 ? round(frames / usage.seconds, 1) : 0,
      frames,
      encodeMsMean: frames > 0 ? round((total.encodeMs - start.counters.encodeMs) / frames, 3) : 0,
      payloadBytesMean: rung0Frames > 0 ? Math.round((total.bytes - start.counters.bytes) / rung0Frames) : 0,
      viewers: server.viewerList.map((v) => {
        const before = start.viewers.get(v.id) ?? { sent: 0, dropped: 0 };
        return { id: v.id, sent: v.sent - before.sent, dropped: v.dropped - before.dropped };
      }),
      ...usage,
    });
  };

  onControlSignals({
    start: () => {
      window = {
        mark: markWindow(),
        counters: { ...total },
        viewers: new Map(server.viewerList.map((v) => [v.id, { sent: v.sent, dropped: v.dropped }])),
      };
    },
    stop: () => {
      report();
      stop.abort();
    },
  });

  try {
    // Start only when every receiver is there, so that they all see the same stream.
    while (server.viewerList.length < viewers && !stop.signal.aborted) await new Promise((resolve) => setTimeout(resolve, 5));
    process.stdout.write('PUMPING\n');
    if (!stop.signal.aborted) {
      await pumpFrames({
        source,
        broadcast,
        onPublished: ({ encodeMs, frames }) => {
          total.frames++;
          total.encodeMs += encodeMs;
          const stream = frames.get(0);
          if (stream) {
            total.rung0Frames++;
            total.bytes += stream.prepared.payload.length;
          }
        },
        signal: stop.signal,
      });
    }
  } finally {
    report();
    await source.close();
    // Receivers have stopped by now; do not wait for slow goodbyes.
    await Promise.race([server.close('bench over'), new Promise((resolve) => setTimeout(resolve, 500))]);
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`sender-driver: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
