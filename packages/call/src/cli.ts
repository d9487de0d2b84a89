import { existsSync, readFileSync } from 'node:fs';
import type { FrameSink } from '@camstream/media';
import type { ViewerFigures } from '@camstream/sender';
import { CALL_USAGE, parseCallArgs, UsageError, type CallCliOptions } from './options';

const log = (line: string) => process.stderr.write(`[call] ${line}\n`);

/** Entry point of `camstream-call` and `nx run call:serve`. Sets process.exitCode. */
export async function run(argv: string[]): Promise<void> {
  let options: CallCliOptions | 'help';
  try {
    options = parseCallArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`camstream-call: ${err.message}\nTry --help.\n`);
    process.exitCode = 2;
    return;
  }
  if (options === 'help') {
    process.stdout.write(CALL_USAGE);
    return;
  }
  const stop = new AbortController();
  // Listening for signals from the start: one that arrives before would kill the process without
  // a bye to the partner.
  const onSignal = (signal: string) => {
    log(`${signal}: ending the call`);
    stop.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    process.exitCode = await callUntil(options, stop);
  } catch (err) {
    process.stderr.write(`camstream-call: ${(err as Error).message}\n`);
    process.exitCode = 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function callUntil(options: CallCliOptions, stop: AbortController): Promise<number> {
  // Loaded here, not at the top, so that --help and bad options answer at once.
  const { X509Certificate } = await import('node:crypto');
  const { OpenCVCodec, openSource, openWindow, probeDisplay } = await import('@camstream/opencv');
  const { formatStatsLine, ReceiverStats } = await import('@camstream/receiver');
  const { SenderStats } = await import('@camstream/sender');
  const { Call } = await import('./call');
  const { CallWindow } = await import('./call-window');

  const partner = `${options.partner.host}:${options.partner.port}`;
  const tls = options.tls && { cert: readPem(options.tls.certFile, '--tls-cert'), key: readPem(options.tls.keyFile, '--tls-key') };
  const partnerCa = options.partnerTls?.caFile ? readPem(options.partnerTls.caFile, '--tls-ca') : undefined;
  const showWindow = await decideDisplay(options.display, probeDisplay);
  const source = await openSource(resolveSourceSpec(options.source), {
    ...(options.width === undefined ? {} : { width: options.width, height: options.height }),
    ...(options.fps === undefined ? {} : { fps: options.fps }),
    loop: options.loop,
  });
  let window: InstanceType<typeof CallWindow> | undefined;
  const ticker: { timer?: NodeJS.Timeout } = {};
  const deadline = options.durationS === undefined ? undefined : setTimeout(() => stop.abort(), options.durationS * 1000);
  try {
    const { info } = source;
    log(`source: ${info.description}, ${info.width}x${info.height} @ ${info.fps || 'max'} fps`);
    const codec = new OpenCVCodec();
    if (showWindow) {
      window = new CallWindow(await openWindow(`camstream call with ${partner}`), { codec });
      void window.closed.then(() => {
        log('window closed: ending the call (both directions)');
        stop.abort();
      });
    }
    const receiverStats = new ReceiverStats();
    // Figures for both directions: "out" what this side sends, "in" what it receives.
    const print = (direction: 'out' | 'in', text: string) => {
      if (!options.statsJson) return void process.stdout.write(`${direction}: ${text}`);
      for (const line of text.split('\n').filter(Boolean)) process.stdout.write(`${JSON.stringify({ direction, ...JSON.parse(line) })}\n`);
    };
    // The sender's figures read its viewers once the call has started.
    const figures: { server?: { readonly viewerList: ViewerFigures[] } } = {};
    const viewers = {
      get viewerList(): ViewerFigures[] {
        return figures.server?.viewerList ?? [];
      },
    };
    const senderStats = new SenderStats(viewers, options.statsJson ? 'json' : 'text', options.quiet, (text) => print('out', text));
    const partnerSinks: FrameSink[] = window ? [window.partnerSink] : [];
    const call = await Call.start({
      host: options.host,
      port: options.port,
      partner: options.partner,
      source,
      codec,
      encoding: options.encoding,
      quality: options.quality,
      adapt: options.adapt,
      name: options.name,
      ...(options.secret ? { secret: options.secret } : {}),
      ...(tls ? { tls } : {}),
      ...(options.partnerTls
        ? { partnerTls: { ...(partnerCa ? { ca: partnerCa } : {}), ...(options.partnerTls.fingerprint256 ? { fingerprint256: options.partnerTls.fingerprint256 } : {}) } }
        : {}),
      maxStreamSize: options.maxSize,
      openPartnerSinks: async () => partnerSinks,
      ...(window ? { preview: window.previewSink } : {}),
      receiverStats,
      onPublished: (published) => senderStats.published(published.encodeMs),
      log: (direction, line) => log(`${direction}: ${line}`),
      signal: stop.signal,
    });
    figures.server = call.server;
    if (tls) log(`out: TLS on; certificate SHA-256 fingerprint (for the partner's --tls-fingerprint): ${new X509Certificate(tls.cert).fingerprint256}`);
    if (options.secret) log('both directions require the shared secret');
    warnIfExposed(options.host, Boolean(options.secret));
    process.stdout.write(`LISTENING AT: ${call.server.address}\n`);

    const printIn = (kind: 'interval' | 'summary') => {
      const snapshot = kind === 'interval' ? receiverStats.takeInterval() : receiverStats.summary();
      print('in', options.statsJson ? `${JSON.stringify({ kind, time: new Date().toISOString(), ...snapshot })}\n` : `${kind === 'summary' ? 'summary: ' : ''}${formatStatsLine(snapshot)}\n`);
    };
    if (!options.quiet) ticker.timer = setInterval(() => printIn('interval'), 1000);

    const end = await call.finished;
    senderStats.stop();
    senderStats.summary();
    printIn('summary');
    if (end.outcome === 'failed') {
      process.stderr.write(`camstream-call: ${end.error.message}\n`);
      return 1;
    }
    log(end.outcome === 'source-ended' ? 'the source ended: call over' : 'call over');
    return 0;
  } finally {
    clearInterval(ticker.timer);
    if (deadline) clearTimeout(deadline);
    await window?.close();
    await source.close();
  }
}

/** Never let OpenCV open a window without a display: Qt would abort the whole process. */
async function decideDisplay(mode: CallCliOptions['display'], probe: () => Promise<{ available: boolean }>): Promise<boolean> {
  if (mode === 'off') return false;
  const { available } = await probe();
  if (mode === 'on' && !available) throw new Error('--display on, but no display is available (DISPLAY is not set or the X server does not answer)');
  if (!available) log('no display available (DISPLAY is not set or unreachable): no window, printing stats for both directions');
  return available;
}

/** `auto` means the first camera when there is one, else the built-in test pattern. */
function resolveSourceSpec(spec: string): string {
  if (spec !== 'auto') return spec;
  if (existsSync('/dev/video0')) return '0';
  log('no camera found (/dev/video0): streaming the built-in test pattern');
  return 'test';
}

function warnIfExposed(host: string, hasSecret: boolean): void {
  if (hasSecret || host === 'localhost' || host === '::1' || /^127\./.test(host)) return;
  const bar = '!'.repeat(78);
  log(bar);
  log(`WARNING: listening on ${host} WITHOUT a shared secret: anyone who can reach this port`);
  log('can watch this side of the call. Set CAMSTREAM_SECRET (or --secret) on both sides,');
  log('and --tls-cert/--tls-key.');
  log(bar);
}

function readPem(file: string, option: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new Error(`${option} ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}
