import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import type { FrameSink } from '@camstream/media';
import type { OpenCVCodec, VideoRecorder } from '@camstream/opencv';
import type { FrameHeader, StreamDescription } from '@camstream/protocol';
import { parseReceiverArgs, RECEIVER_USAGE, UsageError, type ReceiverCliOptions } from './options';
import type { StatsSnapshot } from './stats';

const log = (line: string) => process.stderr.write(`[receiver] ${line}\n`);

/** Entry point of `camstream-receiver` and `nx run receiver:serve`. Sets process.exitCode. */
export async function run(argv: string[]): Promise<void> {
  let options: ReceiverCliOptions | 'help';
  try {
    options = parseReceiverArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`camstream-receiver: ${err.message}\nTry --help.\n`);
    process.exitCode = 2;
    return;
  }
  if (options === 'help') {
    process.stdout.write(RECEIVER_USAGE);
    return;
  }
  try {
    process.exitCode = await watch(options);
  } catch (err) {
    process.stderr.write(`camstream-receiver: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}

async function watch(options: ReceiverCliOptions): Promise<number> {
  // Loaded here, not at the top, so that --help and bad options answer without loading the
  // OpenCV adapter, the protocol or the network code.
  const { OpenCVCodec, openWindow, RecorderProcess, startRecorder } = await import('@camstream/opencv');
  const { receive } = await import('./receiver');
  const { formatStatsLine, ReceiverStats } = await import('./stats');
  const showWindow = await decideDisplay(options.display);
  // Loading OpenCV in the recording process takes a second or two: start it now, while we connect.
  const recorderProcess = options.record ? RecorderProcess.start() : undefined;
  const stats = new ReceiverStats();
  const stop = new AbortController();
  const codec = new OpenCVCodec();
  const browser = options.httpPort === undefined ? undefined : await startBrowserViewer(options, codec);
  const print = (snapshot: StatsSnapshot, kind: 'interval' | 'summary') => {
    const line = options.statsJson ? JSON.stringify({ kind, time: new Date().toISOString(), ...snapshot }) : `${kind === 'summary' ? 'summary: ' : ''}${formatStatsLine(snapshot)}`;
    process.stdout.write(`${line}\n`);
  };
  const ticker = setInterval(() => {
    const snapshot = stats.takeInterval();
    browser?.viewer.publishStats(snapshot);
    if (!options.quiet) print(snapshot, 'interval');
  }, 1000);
  const onSignal = (signal: string) => {
    log(`${signal}: stopping`);
    stop.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const deadline = options.durationS === undefined ? undefined : setTimeout(() => stop.abort(), options.durationS * 1000);

  const recorders: VideoRecorder[] = [];
  const openSinks = async (stream: StreamDescription): Promise<FrameSink[]> => {
    const sinks: FrameSink[] = [];
    if (showWindow) {
      const window = await openWindow(`camstream: ${stream.source ?? 'stream'} (${options.host}:${options.port})`);
      void window.closed.then(() => {
        log('window closed: stopping');
        stop.abort();
      });
      sinks.push(window);
    }
    if (options.record) {
      // A sender that comes back with another frame size starts a new file rather than overwriting.
      const file = numbered(options.record, recorders.length);
      // It takes frames at once, while it opens the file: the first frames shown are recorded too.
      const recorder = startRecorder(file, { fps: stream.fps || 30, width: stream.width, height: stream.height }, recorderProcess);
      recorders.push(recorder);
      sinks.push(recorder);
      // A file that cannot be opened ends the run with that error (receive() returns it).
      recorder.opened.then(
        () => log(`recording to ${file}`),
        (err: Error) => stop.abort(err),
      );
    }
    return sinks;
  };

  try {
    const result = await receive({
      host: options.host,
      port: options.port,
      name: options.name,
      codec,
      openSinks,
      ...(browser ? { lastingSinks: [browser.sink], onFrame: browser.onFrame } : {}),
      ...(options.frames === undefined ? {} : { maxFrames: options.frames }),
      reconnect: options.reconnect,
      maxStreamSize: options.maxSize,
      security: securityOf(options),
      stats,
      log,
      signal: stop.signal,
    });
    print(stats.summary(), 'summary');
    recorders.forEach((r, i) => log(`recorded ${r.writtenFrames} frames to ${numbered(options.record!, i)} (${r.droppedFrames} dropped: the recorder fell behind)`));
    if (result.outcome === 'failed') {
      process.stderr.write(`camstream-receiver: ${result.error.message}\n`);
      return 1;
    }
    return 0;
  } finally {
    recorderProcess?.discard();
    await browser?.viewer.close();
    clearInterval(ticker);
    if (deadline) clearTimeout(deadline);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Never let OpenCV open a window without a display: Qt would abort the whole process. */
async function decideDisplay(mode: ReceiverCliOptions['display']): Promise<boolean> {
  if (mode === 'off') return false;
  // The asynchronous probe: hasDisplay() would start a child process to do the same.
  const { probeDisplay } = await import('@camstream/opencv');
  const { available } = await probeDisplay();
  if (mode === 'on' && !available) {
    throw new Error('--display on, but no display is available (DISPLAY is not set or the X server does not answer)');
  }
  if (!available) log('no display available (DISPLAY is not set or unreachable): running headless, printing stats');
  return available;
}

/**
 * The browser server (@camstream/browser) gets every frame as received (a JPEG stream's payload
 * is forwarded byte for byte as rung 0) and then its decoded image, from which it encodes what
 * browsers need: rung 0 of raw and PNG streams, and lower rungs for slow tabs.
 */
async function startBrowserViewer(options: ReceiverCliOptions, codec: OpenCVCodec) {
  const { BrowserServer } = await import('@camstream/browser');
  const viewer = await BrowserServer.listen({
    host: options.httpHost,
    port: options.httpPort ?? 0,
    title: `camstream from ${options.host}:${options.port}`,
    codec,
    log,
  });
  log(`browser viewer at ${viewer.url} (MJPEG at ${viewer.url}stream.mjpg)`);
  const sink: FrameSink = {
    write: (image, meta) => viewer.write(image, meta),
    keepsImages: viewer.keepsImages,
    close: async () => undefined, // closed with the run, not with each stream
  };
  const onFrame = (header: FrameHeader, payload: Buffer) => viewer.received(header, payload);
  return { viewer, sink, onFrame };
}

function securityOf(options: ReceiverCliOptions) {
  let ca: Buffer | undefined;
  if (options.tls?.caFile) {
    try {
      ca = readFileSync(options.tls.caFile);
    } catch (err) {
      throw new Error(`--tls-ca ${options.tls.caFile}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }
  return {
    ...(options.secret ? { secret: options.secret } : {}),
    ...(options.tls ? { tls: { ...(ca ? { ca } : {}), ...(options.tls.fingerprint256 ? { fingerprint256: options.tls.fingerprint256 } : {}) } } : {}),
  };
}

/** out.avi, out-2.avi, out-3.avi, ... */
function numbered(file: string, index: number): string {
  if (index === 0) return file;
  const ext = extname(file);
  return `${file.slice(0, file.length - ext.length)}-${index + 1}${ext}`;
}
