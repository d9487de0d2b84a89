import { existsSync, readFileSync } from 'node:fs';
import type { Display } from '@camstream/media';
import type { StreamDescription } from '@camstream/protocol';
import { parseSenderArgs, SENDER_USAGE, UsageError, type SenderOptions } from './options';

const log = (line: string) => process.stderr.write(`[sender] ${line}\n`);

/** Entry point of `camstream-sender` and `nx run sender:serve`. Sets process.exitCode. */
export async function run(argv: string[]): Promise<void> {
  let options: SenderOptions | 'help';
  try {
    options = parseSenderArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`camstream-sender: ${err.message}\nTry --help.\n`);
    process.exitCode = 2;
    return;
  }
  if (options === 'help') {
    process.stdout.write(SENDER_USAGE);
    return;
  }
  try {
    process.exitCode = await serve(options);
  } catch (err) {
    process.stderr.write(`camstream-sender: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}

async function serve(options: SenderOptions): Promise<number> {
  // Loaded here, not at the top, so that --help and bad options answer without loading the
  // OpenCV adapter, the protocol or the network code.
  const { X509Certificate } = await import('node:crypto');
  const { OpenCVCodec, openSource, openWindow, probeDisplay } = await import('@camstream/opencv');
  const { pumpFrames } = await import('./pump');
  const { SenderStats } = await import('./stats');
  const { StreamServer } = await import('./stream-server');
  const source = await openSource(resolveSourceSpec(options.source), {
    ...(options.width === undefined ? {} : { width: options.width, height: options.height }),
    ...(options.fps === undefined ? {} : { fps: options.fps }),
    loop: options.loop,
  });
  let server: Awaited<ReturnType<typeof StreamServer.listen>> | undefined;
  let preview: Display | undefined;
  const stop = new AbortController();
  // Listening for signals before saying LISTENING AT: a signal that arrives while no listener is
  // registered kills the process at once, without a bye to anyone.
  const onSignal = (signal: string) => {
    log(`${signal}: stopping`);
    stop.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const { info } = source;
    log(`source: ${info.description}, ${info.width}x${info.height} @ ${info.fps || 'max'} fps`);
    const stream: StreamDescription = {
      width: info.width,
      height: info.height,
      fps: info.fps,
      pixelFormat: 'bgr24',
      encoding: options.encoding,
      ...(options.encoding === 'jpeg' ? { quality: options.quality } : {}),
      source: (options.name ?? info.description).slice(0, 200),
    };
    const tls = options.tls && { cert: readPem(options.tls.certFile, '--tls-cert'), key: readPem(options.tls.keyFile, '--tls-key') };
    server = await StreamServer.listen({
      host: options.host,
      port: options.port,
      stream,
      maxViewers: options.maxViewers,
      ...(options.secret ? { secret: options.secret } : {}),
      ...(tls ? { tls } : {}),
      log,
    });
    if (tls) log(`TLS on; certificate SHA-256 fingerprint (for --tls-fingerprint): ${new X509Certificate(tls.cert).fingerprint256}`);
    if (options.secret) log('receivers must prove the shared secret');
    warnIfExposed(options.host, Boolean(options.secret));
    process.stdout.write(`LISTENING AT: ${server.address}\n`);

    if (options.preview) {
      if ((await probeDisplay()).available) {
        const window = await openWindow('TRANSMITTING VIDEO');
        preview = window;
        void window.closed.then(() => stop.abort());
      } else {
        log('no display available (DISPLAY is not set or unreachable): running without the preview window');
      }
    }

    const stats = new SenderStats(server, options.statsJson ? 'json' : 'text', options.quiet);
    const stopped = new Promise<'stopped'>((resolve) => stop.signal.addEventListener('abort', () => resolve('stopped')));

    if (!info.live) {
      // A file has a beginning: play it to someone rather than into the void.
      log('waiting for a receiver before playing the file');
      await Promise.race([server.waitForViewer(), stopped]);
    }
    const activeServer = server;
    const result = stop.signal.aborted ? 'stopped' : await Promise.race([
      pumpFrames({
        source,
        codec: new OpenCVCodec(),
        encoding: options.encoding,
        quality: options.quality,
        publish: (frame) => activeServer.broadcast(frame),
        hasAudience: () => activeServer.viewerList.length > 0,
        untilAudience: () => activeServer.waitForViewer(),
        onEncoded: (ms, frame) => stats.frameSent(ms, frame.payload.length),
        ...(preview ? { preview } : {}),
        signal: stop.signal,
      }),
      stopped,
    ]);
    stats.stop();
    const reason = result === 'source-ended' ? 'end of stream' : 'sender shutting down';
    log(reason);
    await server.close(reason);
    return 0;
  } finally {
    await server?.close('sender error');
    await preview?.close();
    await source.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** `auto` means the first camera when there is one, else the built-in test pattern. */
function resolveSourceSpec(spec: string): string {
  if (spec !== 'auto') return spec;
  if (existsSync('/dev/video0')) return '0';
  log('no camera found (/dev/video0): streaming the built-in test pattern');
  return 'test';
}

function warnIfExposed(host: string, hasSecret: boolean): void {
  if (hasSecret || host === '127.0.0.1' || host === 'localhost' || host === '::1') return;
  const bar = '!'.repeat(78);
  log(bar);
  log(`WARNING: listening on ${host} WITHOUT a shared secret: anyone who can reach this port`);
  log('can watch the stream. Set CAMSTREAM_SECRET (or --secret), and --tls-cert/--tls-key.');
  log(bar);
}

function readPem(file: string, option: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new Error(`${option} ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}
