/*
 * The sender side of one bench cell, as its own process: what `camstream-sender` does
 * (a Broadcast with OpenCVCodec, StreamServer and pumpFrames, wired as its cli.ts wires them), with a
 * pre-loaded synthetic clip as the source.
 *
 *   node -r ts-node/register/transpile-only packages/bench/src/sender-driver.ts \
 *     --frames-file F --width W --height H [--encoding raw-bgr|jpeg] [--quality 80] [--fps 0]
 *     [--viewers 1] [--port 0] [--capture-copy] [--source clip|test] [--adapt on|off] [--viewer-stats]
 *
 * Prints "LISTENING AT: host:port", waits for --viewers receivers, then streams. SIGUSR2 starts
 * the measured window; SIGTERM/SIGINT ends it, prints one BENCH-RESULT line and exits.
 * --source test streams the OpenCV test pattern (as `camstream-sender --source test`) instead of
 * the clip; --viewer-stats prints, every 250 ms, one VIEWERS line with each viewer's flow-control
 * state (rung, window, in flight, capacity, frames and bytes sent, drops), for the slow-link cells.
 */
import { parseArgs } from 'node:util';
import type { Encoding, FrameSource } from '@camstream/media';
import { OpenCVCodec, openSource } from '@camstream/opencv';
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
      source: { type: 'string', default: 'clip' },
      adapt: { type: 'string', default: 'on' },
      'viewer-stats': { type: 'boolean', default: false },
    },
  });
  const width = Number(values.width);
  const height = Number(values.height);
  const encoding = values.encoding as Encoding;
  const quality = Number(values.quality);
  const fps = Number(values.fps);
  const viewers = Number(values.viewers);
  if (values.source !== 'clip' && values.source !== 'test') throw new Error(`unknown --source ${values.source}: clip or test`);
  if (values.adapt !== 'on' && values.adapt !== 'off') throw new Error(`--adapt ${values.adapt}: on or off`);
  if ((values.source === 'clip' && !values['frames-file']) || !(width > 0) || !(height > 0)) throw new Error('need --width, --height and (with --source clip) --frames-file');
  if (!['raw-bgr', 'jpeg', 'png'].includes(encoding)) throw new Error(`unknown --encoding ${encoding}`);

  const source: FrameSource =
    values.source === 'test'
      ? await openSource('test', { width, height, fps })
      : new ClipSource(loadClip(values['frames-file']!, width, height), fps, values['capture-copy']);
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
    adapt: values.adapt === 'on',
    log: () => undefined,
  });
  process.stdout.write(`LISTENING AT: ${server.address}\n`);
  const viewerStats = values['viewer-stats']
    ? setInterval(() => {
        const viewers = server.viewerList.map((v) => ({
          id: v.id,
          name: v.name,
          rung: v.rung,
          sent: v.sent,
          dropped: v.dropped,
          bytesSent: v.bytesSent,
          windowBytes: v.windowBytes,
          inFlightBytes: v.inFlightBytes,
          inFlightFrames: v.inFlightFrames,
          // JSON has no Infinity: -1 = faster than arrival spans measure; null = not measured yet.
          capacityBytesPerSecond: v.capacityBytesPerSecond === undefined ? null : Number.isFinite(v.capacityBytesPerSecond) ? Math.round(v.capacityBytesPerSecond) : -1,
        }));
        process.stdout.write(`VIEWERS ${JSON.stringify({ at: performance.timeOrigin + performance.now(), viewers })}\n`);
      }, 250)
    : undefined;

  const stop = new AbortController();
  const total: Counters = { frames: 0, encodeMs: 0, bytes: 0, rung0Frames: 0 };
  let window: { mark: WindowMark; counters: Counters; viewers: Map<number, { sent: number; dropped: number; bytes: number }> } | undefined;
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
        const before = start.viewers.get(v.id) ?? { sent: 0, dropped: 0, bytes: 0 };
        return { id: v.id, name: v.name, sent: v.sent - before.sent, dropped: v.dropped - before.dropped, bytesSent: v.bytesSent - before.bytes, rung: v.rung };
      }),
      ...usage,
    });
  };

  onControlSignals({
    start: () => {
      window = {
        mark: markWindow(),
        counters: { ...total },
        viewers: new Map(server.viewerList.map((v) => [v.id, { sent: v.sent, dropped: v.dropped, bytes: v.bytesSent }])),
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
    clearInterval(viewerStats);
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
