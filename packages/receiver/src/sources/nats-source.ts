import type { FrameCodec } from '@camstream/media';
import { frameLimit, SessionError } from '@camstream/protocol';
import { type CameraSelection, type CameraStats, CameraSubscriber, connectNats, type NatsLink, type SubscriberEvent } from '@camstream/nats';
import type { HubCamera } from '../hub/hub-camera';
import { type CameraPipeline, createCameraPipeline } from '../pipeline/camera-pipeline';
import { checkH264Frame } from '../pipeline/h264-check';
import type { ReceiverResult } from '../receiver';
import type { TransportTotals } from '../stats';

export interface NatsCamerasOptions {
  url: string;
  cameras: CameraSelection;
  credsFile: string | undefined;
  caFile: string | undefined;
  /** Refuse every message not signed with this secret (PROTOCOL.md 9.5). */
  secret: string | undefined;
  maxStreamSize: { width: number; height: number };
  /** This receiver's name, shown by the server's monitoring. */
  name: string;
  codec: FrameCodec;
  /** The camera of that name, made the first time it is asked for (cameras appear as they announce themselves). */
  camera: (name: string) => HubCamera;
  /** Stop each camera after this many frames; the source ends once every camera watched has them. */
  maxFrames: number | undefined;
  log: (line: string) => void;
  signal: AbortSignal;
}

/** A refusal or corrupt message of one kind is logged at most this often per camera. */
const PROBLEM_LOG_INTERVAL_MS = 5000;

interface Watched {
  camera: HubCamera;
  stages: CameraPipeline;
  frames: number;
  /** The seq of the last H.264 frame offered: a frame that does not follow it needs a keyframe. */
  lastH264Seq?: number;
}

/**
 * Cameras on NATS: one connection, one CameraSubscriber for the selection (one camera, a list, or
 * every camera on the bus), and per camera the same pipeline and sinks as a TCP camera's. The
 * subscriber reads every message as it arrives and keeps only the newest frame per camera, so the
 * server never cuts this receiver off as a slow consumer; the decode pipeline is latest-wins too.
 * Its counts (frames lost in transport, gaps, corrupt, refused, outages) are the camera's figures.
 */
export class NatsCameras {
  private readonly watched = new Map<string, Watched>();
  private readonly problemLogged = new Map<string, { at: number; since: number }>();
  private subscriber: CameraSubscriber | undefined;
  private failure: Error | undefined;
  private finished!: () => void;
  private readonly done = new Promise<void>((resolve) => (this.finished = resolve));
  private framesReached = false;

  private constructor(
    private readonly link: NatsLink,
    private readonly options: NatsCamerasOptions,
  ) {}

  /**
   * Connects and subscribes. Throws NatsTransportError with one clear sentence when it cannot
   * (e.g. `NATS at 127.0.0.1:4222 refused the credentials: authorization violation (user "alice" from the URL)`).
   */
  static async connect(options: NatsCamerasOptions): Promise<NatsCameras> {
    const link = await connectNats({
      url: options.url,
      name: `camstream-receiver ${options.name}`,
      ...(options.credsFile ? { credsFile: options.credsFile } : {}),
      ...(options.caFile ? { caFile: options.caFile } : {}),
    });
    const source = new NatsCameras(link, options);
    try {
      source.subscriber = await CameraSubscriber.start(link, {
        cameras: options.cameras,
        ...(options.secret === undefined ? {} : { secret: options.secret }),
        maxSize: options.maxStreamSize,
        onFrame: (frame) => source.onFrame(frame),
        onEvent: (event) => source.onEvent(event),
      });
    } catch (error) {
      await link.close();
      throw error;
    }
    options.log(`watching ${options.cameras === '*' ? 'every camera' : `camera${options.cameras.length > 1 ? 's' : ''} ${options.cameras.join(', ')}`} on NATS at ${link.server}${options.secret ? ' (signed frames only)' : ''}`);
    return source;
  }

  /** Runs until stopped, the frames asked for arrived, or the connection failed for good. */
  async run(): Promise<ReceiverResult> {
    const { signal } = this.options;
    const onAbort = () => this.finished();
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) this.finished();
    void this.link.closed.then((error) => {
      if (error) this.failure ??= error;
      this.finished();
    });
    await this.done;
    signal.removeEventListener('abort', onAbort);
    await this.subscriber?.close();
    this.sync();
    for (const { stages } of this.watched.values()) {
      await stages.sinks.ready();
      await stages.pipeline.close();
      await stages.sinks.close();
    }
    await this.link.close();
    if (this.failure) return { outcome: 'failed', error: this.failure };
    return { outcome: this.framesReached ? 'frames-reached' : 'stopped' };
  }

  /** Brings every camera's figures up to date with the subscriber's counts (before each report). */
  sync(): void {
    for (const [name, { camera }] of this.watched) {
      const counts = this.subscriber?.statsOf(name);
      if (counts) camera.stats.syncTransport(totalsOf(counts));
    }
  }

  private watch(name: string): Watched {
    let watched = this.watched.get(name);
    if (watched) return watched;
    const camera = this.options.camera(name);
    const stages = createCameraPipeline({
      codec: this.options.codec,
      openSinks: camera.openSinks,
      lastingSinks: camera.lastingSinks,
      stats: camera.stats,
      log: camera.log,
      stoppedWith: () => this.failure,
      onSinkFailed: (error) => {
        this.failure ??= error;
        this.finished();
      },
    });
    camera.refusals = () => {
      const refused = this.subscriber?.statsOf(name)?.refused;
      return refused ? { ...refused } : { unsigned: 0, badSignature: 0, replayed: 0, staleEpoch: 0 };
    };
    watched = { camera, stages, frames: 0 };
    this.watched.set(name, watched);
    return watched;
  }

  private onFrame(frame: Parameters<Parameters<typeof CameraSubscriber.start>[1]['onFrame']>[0]): void {
    const watched = this.watch(frame.camera);
    const { camera, stages } = watched;
    if (this.options.maxFrames !== undefined && watched.frames >= this.options.maxFrames) return;
    let afterGap = false;
    if (frame.header.encoding === 'h264') {
      // A subscriber joins anywhere and may miss frames: decoding restarts at a keyframe after a gap.
      afterGap = watched.lastH264Seq === undefined || frame.header.seq !== watched.lastH264Seq + 1;
      watched.lastH264Seq = frame.header.seq;
      try {
        checkH264Frame(frame.header, frame.payload, camera.stream ? frameLimit(camera.stream) : Number.MAX_SAFE_INTEGER);
      } catch (error) {
        if (!(error instanceof SessionError)) throw error;
        camera.stats.corrupt++;
        watched.lastH264Seq = undefined;
        this.logProblem(frame.camera, 'h264', `refused a frame: ${error.message}`);
        return;
      }
    }
    camera.frameArrived(frame.header, frame.payload);
    camera.stats.frameReceived({ payloadBytes: frame.payload.length, rung: 0, declaredDrops: frame.declaredDrops, undeclaredGap: frame.undeclaredGap });
    // The payload is a view of the NATS message: nobody else reuses it, so it is never pooled.
    stages.pipeline.offer({ header: frame.header, payload: frame.payload, pooled: false, rung: 0, afterGap });
    watched.frames++;
    this.checkFramesReached();
  }

  private checkFramesReached(): void {
    const wanted = this.options.maxFrames;
    if (wanted === undefined) return;
    const names = this.options.cameras === '*' ? [...this.watched.keys()] : this.options.cameras;
    if (names.length > 0 && names.every((name) => (this.watched.get(name)?.frames ?? 0) >= wanted)) {
      this.framesReached = true;
      this.finished();
    }
  }

  private onEvent(event: SubscriberEvent): void {
    const { log } = this.options;
    switch (event.type) {
      case 'stream': {
        const { camera, stages } = this.watch(event.camera);
        const { stream } = event;
        camera.streamStarted(stream, event.senderName);
        camera.stats.streamStarted([{ width: stream.width, height: stream.height, ...(stream.quality === undefined ? {} : { quality: stream.quality }) }]);
        stages.pipeline.setStream(stream);
        stages.sinks.openFor(stream);
        camera.log(
          `${event.restarted ? 'the sender restarted: ' : ''}NATS camera ${event.camera}${event.senderName ? ` from ${JSON.stringify(event.senderName)}` : ''}: ` +
            `${stream.source ?? 'stream'} ${stream.width}x${stream.height} ${stream.encoding} @ ${stream.fps} fps`,
        );
        break;
      }
      case 'outage-end': {
        const { outage } = event;
        this.watch(event.camera).camera.log(
          `outage of ${(outage.lengthMs / 1000).toFixed(2)} s over (${outage.cause}): ${outage.lostFrames} frames lost in transport, ${outage.declaredDrops} dropped by the sender`,
        );
        break;
      }
      case 'refused':
        this.logProblem(event.camera, `refused:${event.reason}`, `refused a message (${event.reason}): ${event.detail}`);
        break;
      case 'corrupt':
        this.logProblem(event.camera, 'corrupt', `corrupt message: ${event.error.message}`);
        break;
      case 'link':
        log(event.state === 'disconnected' ? `NATS: lost the connection to ${event.server}: reconnecting` : `NATS: reconnected to ${event.server}`);
        break;
      case 'too-many-cameras':
        log(`NATS: camera ${event.camera} ignored: already watching ${event.limit} cameras`);
        break;
      case 'consumer-error':
        log(`NATS camera ${event.camera}: ${(event.error as Error)?.message ?? String(event.error)}`);
        break;
      case 'describe-failed':
        this.logProblem(event.camera, 'describe', `could not ask for its stream description: ${(event.error as Error)?.message ?? String(event.error)}`);
        break;
      case 'outage-start':
        // The camera's own liveness check reports it stopped.
        break;
    }
  }

  /** At most one line per camera and kind every few seconds, saying how many were not logged. */
  private logProblem(cameraName: string, kind: string, line: string): void {
    const key = `${cameraName}\u0000${kind}`;
    const now = performance.now();
    const logged = this.problemLogged.get(key);
    if (logged && now - logged.at < PROBLEM_LOG_INTERVAL_MS) {
      logged.since++;
      return;
    }
    this.problemLogged.set(key, { at: now, since: 0 });
    const more = logged?.since ? ` (and ${logged.since} more since the last such line)` : '';
    this.watch(cameraName).camera.log(`${line}${more}`);
  }
}

function totalsOf(counts: CameraStats): TransportTotals {
  const { refused } = counts;
  return {
    frames: counts.frames,
    declaredDrops: counts.declaredDrops,
    undeclaredGaps: counts.undeclaredGaps,
    lostInTransport: counts.lostInTransport,
    corrupt: counts.corrupt,
    refused: refused.unsigned + refused.badSignature + refused.replayed + refused.staleEpoch,
    skipped: counts.skipped,
    outages: counts.outages.count,
  };
}
