import { readFileSync } from 'node:fs';
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
  const stop = new AbortController();
  // Listening for signals from the start: a signal that arrives while no listener is registered
  // kills the process at once (no bye to the sender, no summary, a recording without its index).
  const onSignal = (signal: string) => {
    log(`${signal}: stopping`);
    stop.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await watchUntil(options, stop);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function watchUntil(options: ReceiverCliOptions, stop: AbortController): Promise<number> {
  // Loaded here, not at the top, so that --help and bad options answer without loading the
  // OpenCV adapter, the protocol or the network code.
  const { OpenCVCodec, RecorderProcess } = await import('@camstream/opencv');
  const { receive } = await import('./receiver');
  const { formatStatsLine, ReceiverStats, TUTORIAL_WIRE_NOT_KNOWN } = await import('./stats');
  const { localSinks } = await import('./sinks/local');
  const { startBrowserSink } = await import('./sinks/browser');
  const showWindow = await decideDisplay(options.display);
  // Loading OpenCV in the recording process takes a second or two: start it now, while we connect.
  const recorderProcess = options.record ? RecorderProcess.start() : undefined;
  const tutorialWire = options.wire === 'tutorial';
  const stats = new ReceiverStats(tutorialWire ? { notKnown: TUTORIAL_WIRE_NOT_KNOWN } : {});
  if (tutorialWire) {
    log(`wire: the tutorial's (a length and a pickle per frame); pickles are decoded strictly, never run. It carries no checksums, sequence numbers or capture times: latency, drops and gaps are n/a`);
    if (process.env.CAMSTREAM_SECRET) log('CAMSTREAM_SECRET is set but does not apply: the tutorial wire has no authentication');
  }
  const codec = new OpenCVCodec();
  const from = `${options.host}:${options.port}`;
  const browser =
    options.httpPort === undefined ? undefined : await startBrowserSink({ host: options.httpHost, port: options.httpPort, title: `camstream from ${from}`, codec, log });
  const print = (snapshot: StatsSnapshot, kind: 'interval' | 'summary') => {
    const line = options.statsJson ? JSON.stringify({ kind, time: new Date().toISOString(), ...snapshot }) : `${kind === 'summary' ? 'summary: ' : ''}${formatStatsLine(snapshot)}`;
    process.stdout.write(`${line}\n`);
  };
  const ticker = setInterval(() => {
    const snapshot = stats.takeInterval();
    browser?.viewer.publishStats(snapshot);
    if (!options.quiet) print(snapshot, 'interval');
  }, 1000);
  const deadline = options.durationS === undefined ? undefined : setTimeout(() => stop.abort(), options.durationS * 1000);

  const local = localSinks({ window: showWindow, record: options.record, recorderProcess, from, log, stop: (error) => stop.abort(error) });

  try {
    const result = await receive({
      wire: options.wire,
      host: options.host,
      port: options.port,
      name: options.name,
      codec,
      openSinks: local.open,
      ...(browser ? { lastingSinks: [browser.sink], onFrame: browser.onFrame, onFrameKeepsPayload: browser.keepsPayload } : {}),
      ...(options.frames === undefined ? {} : { maxFrames: options.frames }),
      reconnect: options.reconnect,
      maxStreamSize: options.maxSize,
      security: securityOf(options),
      stats,
      log,
      signal: stop.signal,
    });
    print(stats.summary(), 'summary');
    local.report().forEach((line) => log(line));
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
