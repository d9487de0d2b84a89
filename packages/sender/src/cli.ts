import { existsSync, readFileSync } from 'node:fs';
import type { Display } from '@camstream/media';
import type { MetricsServer } from '@camstream/metrics';
import type { StreamDescription } from '@camstream/protocol';
import type { NatsPublishing } from './nats-publishing';
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
  if (options.nats) {
    // Checked with the NATS package's own rule (loaded only when asked for).
    const { checkCameraName, CameraNameError } = await import('@camstream/nats');
    try {
      checkCameraName(options.nats.camera);
    } catch (err) {
      if (!(err instanceof CameraNameError)) throw err;
      process.stderr.write(`camstream-sender: --camera: ${err.message}\nTry --help.\n`);
      process.exitCode = 2;
      return;
    }
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
  const { Broadcast } = await import('./broadcast');
  const { pumpFrames } = await import('./pump');
  const { SenderStats } = await import('./stats');
  const { StreamServer } = await import('./stream-server');
  const { TutorialServer } = await import('./tutorial-server');
  const { SenderMetrics } = await import('./metrics');
  let server: Awaited<ReturnType<typeof StreamServer.listen>> | Awaited<ReturnType<typeof TutorialServer.listen>> | undefined;
  let broadcast: InstanceType<typeof Broadcast> | undefined;
  let nats: NatsPublishing | undefined;
  const metrics = new SenderMetrics({ viewers: () => server?.viewerList ?? [], nats: () => nats?.figures });
  const source = metrics.countCaptures(
    await openSource(resolveSourceSpec(options.source), {
      ...(options.width === undefined ? {} : { width: options.width, height: options.height }),
      ...(options.fps === undefined ? {} : { fps: options.fps }),
      loop: options.loop,
    }),
  );
  let metricsServer: MetricsServer | undefined;
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
    const tutorialWire = options.wire === 'tutorial';
    const stream: StreamDescription = {
      width: info.width,
      height: info.height,
      fps: info.fps,
      pixelFormat: 'bgr24',
      // The tutorial's clients take the captured image itself: no receiver of an encoding ever joins.
      encoding: tutorialWire ? 'raw-bgr' : options.encoding,
      ...(options.encoding === 'jpeg' && !tutorialWire ? { quality: options.quality } : {}),
      ...(options.bitrate === undefined || tutorialWire ? {} : { bitrate: options.bitrate }),
      source: info.description.slice(0, 200),
    };
    // Each rung in use is encoded once per frame, whatever the number of receivers on it.
    broadcast = new Broadcast({
      codec: new OpenCVCodec(),
      stream,
      h264: { keyframeIntervalSeconds: options.keyframeIntervalSeconds, ...(options.crf === undefined ? {} : { crf: options.crf }), log },
    });
    if (stream.encoding === 'h264') log(describeH264(broadcast.ladder, options));
    if (tutorialWire) {
      server = await TutorialServer.listen({ host: options.host, port: options.port, broadcast, maxViewers: options.maxViewers, log });
      log('wire: the tutorial\'s (an 8-byte length and a pickle of each raw BGR frame), for its receiver script or camstream-receiver --wire tutorial');
      if (process.env.CAMSTREAM_SECRET) log('CAMSTREAM_SECRET is set but does not apply: the tutorial wire has no authentication');
      warnIfTutorialExposed(options.host);
    } else {
      const tls = options.tls && { cert: readPem(options.tls.certFile, '--tls-cert'), key: readPem(options.tls.keyFile, '--tls-key') };
      server = await StreamServer.listen({
        host: options.host,
        port: options.port,
        broadcast,
        ...(options.name === undefined ? {} : { name: options.name }),
        maxViewers: options.maxViewers,
        adapt: options.adapt,
        ...(options.secret ? { secret: options.secret } : {}),
        ...(tls ? { tls } : {}),
        log,
      });
      if (tls) log(`TLS on; certificate SHA-256 fingerprint (for --tls-fingerprint): ${new X509Certificate(tls.cert).fingerprint256}`);
      if (options.secret) log('receivers must prove the shared secret');
      if (broadcast.ladder.length > 1) {
        log(options.adapt ? `quality adapts per receiver: ${broadcast.ladder.length - 1} lower rungs, down to ${describeSpec(broadcast.ladder.at(-1)!)}` : 'quality adaptation off (--adapt off): every receiver gets the stream itself');
      }
      warnIfExposed(options.host, Boolean(options.secret));
    }
    if (options.nats) {
      const { NatsPublishing } = await import('./nats-publishing');
      nats = await NatsPublishing.start({
        url: options.nats.url,
        camera: options.nats.camera,
        ...(options.nats.credsFile ? { credsFile: options.nats.credsFile } : {}),
        ...(options.nats.caFile ? { caFile: options.nats.caFile } : {}),
        ...(options.secret ? { secret: options.secret } : {}),
        ...(options.name === undefined ? {} : { senderName: options.name }),
        broadcast,
        log,
      });
    }
    if (options.metricsPort !== undefined) {
      const { MetricsServer } = await import('@camstream/metrics');
      metricsServer = await MetricsServer.listen({ host: options.host, port: options.metricsPort, render: () => metrics.render(), log });
      log(`metrics at ${metricsServer.url}`);
    }
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
    const publishing = nats;
    if (publishing) stats.showNats(() => publishing.figures);
    const stopped = new Promise<'stopped'>((resolve) => stop.signal.addEventListener('abort', () => resolve('stopped')));

    if (!info.live && !nats) {
      // A file has a beginning: play it to someone rather than into the void.
      log('waiting for a receiver before playing the file');
      await Promise.race([server.waitForViewer(), stopped]);
    }
    const result = stop.signal.aborted ? 'stopped' : await Promise.race([
      pumpFrames({
        source,
        broadcast,
        onPublished: (published) => {
          stats.published(published.encodeMs);
          metrics.published(published.encodeMs);
        },
        ...(preview ? { preview } : {}),
        signal: stop.signal,
      }),
      stopped,
    ]);
    stats.stop();
    stats.summary();
    const reason = result === 'source-ended' ? 'end of stream' : 'sender shutting down';
    log(reason);
    await server.close(reason);
    return 0;
  } finally {
    await nats?.close();
    await metricsServer?.close();
    await server?.close('sender error');
    await broadcast?.close();
    await preview?.close();
    await source.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function describeSpec(spec: { width: number; height: number; quality?: number; bitrate?: number }): string {
  const detail = spec.bitrate !== undefined ? ` ${mbit(spec.bitrate)}` : spec.quality === undefined ? '' : ` q${spec.quality}`;
  return `${spec.width}x${spec.height}${detail}`;
}

function mbit(bitsPerSecond: number): string {
  return `${(bitsPerSecond / 1e6).toFixed(bitsPerSecond < 1e7 ? 2 : 1)} Mbit/s`;
}

/** "H.264 (x264 ultrafast): 4.00 Mbit/s average, keyframe every 2 s; lower rungs 2.40, 1.40, 0.80 Mbit/s". */
function describeH264(ladder: ReadonlyArray<{ bitrate?: number }>, options: SenderOptions): string {
  const [top, ...lower] = ladder.map((r) => r.bitrate ?? 0);
  const rate = options.crf === undefined ? `${mbit(top!)} average` : `constant quality (CRF ${options.crf}) up to ${mbit(top!)}`;
  return `H.264 (x264 ultrafast, zero latency): ${rate}, a keyframe every ${options.keyframeIntervalSeconds} s; lower rungs ${lower.map((b) => (b / 1e6).toFixed(2)).join(', ')} Mbit/s`;
}

/** `auto` means the first camera when there is one, else the built-in test pattern. */
function resolveSourceSpec(spec: string): string {
  if (spec !== 'auto') return spec;
  if (existsSync('/dev/video0')) return '0';
  log('no camera found (/dev/video0): streaming the built-in test pattern');
  return 'test';
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function warnIfExposed(host: string, hasSecret: boolean): void {
  if (hasSecret || isLoopback(host)) return;
  const bar = '!'.repeat(78);
  log(bar);
  log(`WARNING: listening on ${host} WITHOUT a shared secret: anyone who can reach this port`);
  log('can watch the stream. Set CAMSTREAM_SECRET (or --secret), and --tls-cert/--tls-key.');
  log(bar);
}

/** The tutorial wire cannot authenticate anyone: beyond loopback, anyone who reaches the port watches. */
function warnIfTutorialExposed(host: string): void {
  if (isLoopback(host)) return;
  const bar = '!'.repeat(78);
  log(bar);
  log(`WARNING: listening on ${host} with the tutorial's wire, which has NO authentication`);
  log('and no encryption: anyone who can reach this port can watch the stream. Listen on');
  log('127.0.0.1 (the default), or use --wire camstream with a secret and TLS.');
  log(bar);
}

function readPem(file: string, option: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new Error(`${option} ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}
