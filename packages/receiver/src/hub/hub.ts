import { readFileSync } from 'node:fs';
import type { BrowserHub } from '@camstream/browser';
import type { PreparedH264Decoder } from '@camstream/ffmpeg';
import type { CameraSelection } from '@camstream/nats';
import type { RecorderProcess } from '@camstream/opencv';
import type { ReceiverCliOptions } from '../options';
import type { ReceiverResult } from '../receiver';
import type { Mosaic } from '../sinks/mosaic';
import type { NatsCameras } from '../sources/nats-source';
import { type CameraFigures, formatCameraLine, HubCamera, recordingFileFor } from './hub-camera';

/** How often cameras are checked for having stopped: STOPPED shows within this of the threshold. */
const LIVENESS_CHECK_MS = 100;

export interface HubRun {
  options: ReceiverCliOptions;
  /** The NATS cameras, parsed from --camera (undefined without --nats). */
  selection: CameraSelection | undefined;
  /** H.264 decoder processes started ahead, for the TCP senders in order (fewer, or none, is fine). */
  preparedDecoders?: readonly PreparedH264Decoder[];
  /** Stops the run; aborted with an Error (a recording that cannot be written), the run fails with it. */
  stop: AbortController;
  log: (line: string) => void;
  /** Where figures go (stdout). */
  print: (line: string) => void;
}

/**
 * The receiver: one camera or many. Each camera (a TCP sender, or a camera on NATS) has its own
 * pipeline, stats and recording; with one camera everything is as it always was (its window, its
 * stats line, its browser page), with several the receiver is a hub: a mosaic window, a stats line
 * per camera, one recording per camera and a grid in the browser. Resolves with the exit code.
 */
export async function runHub(run: HubRun): Promise<number> {
  const { options, selection, stop, log } = run;
  // Loaded here, not at the top, so that --help and bad options answer without loading OpenCV.
  const { OpenCVCodec, RecorderProcess, drawMosaic, openWindow } = await import('@camstream/opencv');
  const natsCameraCount = selection === undefined ? 0 : selection === '*' ? Infinity : selection.length;
  const several = options.senders.length + natsCameraCount > 1;
  const showWindow = await decideDisplay(options.display, log);
  const codec = new OpenCVCodec();
  const cameras = new Map<string, HubCamera>();
  const failures: string[] = [];
  // Loading OpenCV in the recording process takes a second or two: start it now, while we connect.
  const recorderProcess: RecorderProcess | undefined = options.record && !several ? RecorderProcess.start() : undefined;
  let browser: BrowserHub | undefined;
  let mosaic: Mosaic | undefined;
  let nats: NatsCameras | undefined;
  const stoppedWith = (error?: Error) => stop.abort(error);
  const title = several ? `camstream: ${describeSources(options, selection)}` : `camstream from ${describeSources(options, selection)}`;

  const tutorialWire = options.wire === 'tutorial';
  const { TUTORIAL_WIRE_NOT_KNOWN } = await import('../stats');
  if (tutorialWire) {
    log(`wire: the tutorial's (a length and a pickle per frame); pickles are decoded strictly, never run. It carries no checksums, sequence numbers or capture times: latency, drops and gaps are n/a`);
    if (process.env['CAMSTREAM_SECRET']) log('CAMSTREAM_SECRET is set but does not apply: the tutorial wire has no authentication');
  }
  const cameraFor = (name: string, transport: 'tcp' | 'nats', from: string): HubCamera => {
    const known = cameras.get(name);
    if (known) return known;
    const camera = new HubCamera({
      name,
      transport,
      from,
      ...(tutorialWire && transport === 'tcp' ? { notKnown: TUTORIAL_WIRE_NOT_KNOWN } : {}),
      window: showWindow && !several,
      record: options.record && (several ? recordingFileFor(options.record, name) : options.record),
      recorderProcess: cameras.size === 0 ? recorderProcess : undefined,
      tile: mosaic?.tile(name),
      browser: browser?.camera(name),
      log: several ? (line) => log(`camera ${name}: ${line}`) : log,
      stop: stoppedWith,
    });
    cameras.set(name, camera);
    return camera;
  };

  const report = (figures: CameraFigures, kind: 'interval' | 'summary') => {
    if (options.statsJson) {
      run.print(JSON.stringify({ kind, time: new Date().toISOString(), ...figures }));
      return;
    }
    const prefix = `${kind === 'summary' ? 'summary: ' : ''}${several ? `camera ${figures.camera}: ` : ''}`;
    run.print(`${prefix}${formatCameraLine(figures)}`);
  };

  const checkLiveness = setInterval(() => {
    for (const camera of cameras.values()) {
      const before = camera.liveness.state;
      camera.checkLiveness();
      if (before !== camera.liveness.state) showCaption(camera);
    }
  }, LIVENESS_CHECK_MS);
  const showCaption = (camera: HubCamera, figures = camera.lastInterval) => {
    if (!mosaic) return;
    const state = camera.liveness.state;
    const s = figures;
    mosaic.setCaption(camera.name, {
      title: camera.label === camera.name ? camera.name : `${camera.name} - ${camera.label}`,
      figures: s
        ? `${s.fps.toFixed(1)} fps  p99 ${s.notKnown?.latencyMs ? 'n/a' : s.latencyMs ? s.latencyMs.p99.toFixed(0) : '-'} ms  dropped ${s.senderDropped ?? 'n/a'}  lost ${s.lostInTransport}  gaps ${s.gaps ?? 'n/a'}  corrupt ${s.corrupt}${s.rung ? `  rung ${s.rung.index}` : ''}`
        : '',
      alert: state === 'stopped' ? 'STOPPED' : state === 'waiting' ? 'NO SIGNAL' : undefined,
    });
  };
  const ticker = setInterval(() => {
    nats?.sync();
    for (const camera of cameras.values()) {
      const figures = camera.figures('interval');
      browser?.camera(camera.name).publishStats(figures);
      showCaption(camera, figures);
      if (!options.quiet) report(figures, 'interval');
    }
  }, 1000);
  const deadline = options.durationS === undefined ? undefined : setTimeout(() => stop.abort(), options.durationS * 1000);

  try {
    if (options.httpPort !== undefined) {
      const { BrowserHub } = await import('@camstream/browser');
      const { renderReceiverMetrics } = await import('../metrics');
      browser = await BrowserHub.listen({
        host: options.httpHost,
        port: options.httpPort,
        title,
        codec,
        grid: several,
        metrics: () => {
          nats?.sync();
          return renderReceiverMetrics([...cameras.values()]);
        },
        log,
      });
      log(`browser viewer at ${browser.url} (${several ? `MJPEG at ${browser.url}stream.mjpg?camera=NAME` : `MJPEG at ${browser.url}stream.mjpg`}, metrics at ${browser.url}metrics)`);
    }
    if (several && showWindow) {
      const { Mosaic } = await import('../sinks/mosaic');
      mosaic = await Mosaic.open({ codec, openWindow: (windowTitle) => openWindow(windowTitle), draw: drawMosaic, log, stop: () => stop.abort() });
    }
    const runs: Array<Promise<{ camera: string; result: ReceiverResult }>> = [];
    const { watchTcpCamera } = await import('../sources/tcp-source');
    const security = securityOf(options);
    for (const [index, sender] of options.senders.entries()) {
      const prepared = run.preparedDecoders?.[index];
      const from = formatAddress(sender.host, sender.port);
      const camera = cameraFor(from, 'tcp', from);
      showCaption(camera);
      runs.push(
        watchTcpCamera(camera, {
          wire: options.wire,
          host: sender.host,
          port: sender.port,
          name: options.name,
          codec,
          maxFrames: options.frames,
          reconnect: options.reconnect,
          maxStreamSize: options.maxSize,
          security,
          ...(prepared ? { preparedDecoder: prepared } : {}),
          signal: stop.signal,
        }).then((result) => ({ camera: camera.name, result })),
      );
    }
    if (options.nats && selection !== undefined) {
      const { NatsCameras } = await import('../sources/nats-source');
      const cameraOfNats = (name: string) => {
        const camera = cameraFor(name, 'nats', `NATS camera ${name}`);
        showCaption(camera);
        return camera;
      };
      // The cameras named are there from the start (NO SIGNAL until they send); '*' adds them as they come.
      if (selection !== '*') for (const name of selection) cameraOfNats(name);
      nats = await NatsCameras.connect({
        url: options.nats.url,
        cameras: selection,
        credsFile: options.nats.credsFile,
        caFile: options.nats.caFile,
        secret: options.secret,
        maxStreamSize: options.maxSize,
        name: options.name,
        codec,
        camera: cameraOfNats,
        maxFrames: options.frames,
        log,
        signal: stop.signal,
      });
      runs.push(nats.run().then((result) => ({ camera: 'NATS', result })));
    }
    const ends = await Promise.all(runs);
    nats?.sync();
    for (const camera of cameras.values()) {
      report(camera.figures('summary'), 'summary');
      camera.recordingReport().forEach((line) => camera.log(line));
    }
    for (const { camera, result } of ends) {
      if (result.outcome === 'failed') failures.push(several ? `${camera}: ${result.error.message}` : result.error.message);
    }
    // A run stopped with an error (a recording that cannot be written) fails with it.
    const reason = stop.signal.reason;
    if (failures.length === 0 && stop.signal.aborted && reason instanceof Error && reason.name !== 'AbortError') failures.push(reason.message);
    for (const failure of failures) process.stderr.write(`camstream-receiver: ${failure}\n`);
    return failures.length ? 1 : 0;
  } finally {
    recorderProcess?.discard();
    clearInterval(ticker);
    clearInterval(checkLiveness);
    if (deadline) clearTimeout(deadline);
    await mosaic?.close();
    await browser?.close();
  }
}

/** Never let OpenCV open a window without a display: Qt would abort the whole process. */
async function decideDisplay(mode: ReceiverCliOptions['display'], log: (line: string) => void): Promise<boolean> {
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

function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function describeSources(options: ReceiverCliOptions, selection: CameraSelection | undefined): string {
  const parts = options.senders.map((sender) => formatAddress(sender.host, sender.port));
  if (selection !== undefined) parts.push(selection === '*' ? 'every NATS camera' : `NATS ${selection.join(', ')}`);
  return parts.join(', ');
}
