import { extname } from 'node:path';
import type { BrowserServer } from '@camstream/browser';
import type { FrameSink } from '@camstream/media';
import type { RecorderProcess } from '@camstream/opencv';
import type { FrameHeader, StreamDescription } from '@camstream/protocol';
import type { MosaicTile } from '../sinks/mosaic';
import { localSinks } from '../sinks/local';
import { formatStatsLine, type NotKnown, ReceiverStats, type StatsSnapshot } from '../stats';
import { type CameraState, Liveness } from './liveness';

export type CameraTransport = 'tcp' | 'nats';

/** Refusals by reason, for /metrics (NATS cameras). */
export interface RefusalCounts {
  unsigned: number;
  badSignature: number;
  replayed: number;
  staleEpoch: number;
}

/** One camera's figures: the receiver's stats, plus which camera, whether it sends, and its last frame. */
export interface CameraFigures extends StatsSnapshot {
  camera: string;
  /** Who sends it, as its sender says (hello name or source). */
  label: string;
  transport: CameraTransport;
  state: CameraState;
  /** While stopped: milliseconds since its last frame. */
  stoppedForMs: number | null;
  /** The number of the last frame received. */
  lastSeq: number | null;
}

export interface HubCameraOptions {
  /** The camera's name: the NATS camera name, or HOST:PORT of a TCP sender. */
  name: string;
  transport: CameraTransport;
  /** Where it comes from, for the window's title. */
  from: string;
  /** Figures its wire cannot give (the tutorial's: TUTORIAL_WIRE_NOT_KNOWN), shown as n/a. */
  notKnown?: NotKnown;
  /** Show it in a window of its own (one camera, a display). */
  window: boolean;
  /** Record it to this file (already named for this camera). */
  record: string | undefined;
  recorderProcess: RecorderProcess | undefined;
  /** Its place in the mosaic window, with several cameras and a display. */
  tile: MosaicTile | undefined;
  /** Its server in the receiver's browser hub. */
  browser: BrowserServer | undefined;
  log: (line: string) => void;
  /** Stops the whole run: the window was closed, or a recording cannot be written (with that error). */
  stop: (error?: Error) => void;
}

/**
 * One camera of the receiver, whatever brings its frames (a TCP sender, a NATS subject): its stats,
 * whether it sends (Liveness), and where its frames go: its window or mosaic tile, its recording,
 * its browser server. The transport feeds it (streamStarted, frameArrived) and runs its pipeline
 * into `openSinks` and `lastingSinks`.
 */
export class HubCamera {
  readonly stats: ReceiverStats;
  readonly liveness = new Liveness();
  readonly name: string;
  readonly transport: CameraTransport;
  readonly openSinks: (stream: StreamDescription) => Promise<FrameSink[]>;
  readonly lastingSinks: FrameSink[];
  readonly log: (line: string) => void;
  label: string;
  lastSeq: number | undefined;
  stream: StreamDescription | undefined;
  /** The figures of the last interval (what the stats line printed). */
  lastInterval: CameraFigures | undefined;
  /** Refusals by reason, when the transport tells them (NATS). */
  refusals: (() => RefusalCounts) | undefined;
  private readonly recordings: ReturnType<typeof localSinks>;

  constructor(readonly options: HubCameraOptions) {
    this.stats = new ReceiverStats(options.notKnown ? { notKnown: options.notKnown } : {});
    this.name = options.name;
    this.transport = options.transport;
    this.label = options.name;
    this.log = options.log;
    this.recordings = localSinks({
      window: options.window,
      record: options.record,
      recorderProcess: options.recorderProcess,
      from: options.from,
      log: options.log,
      stop: options.stop,
    });
    this.openSinks = this.recordings.open;
    const browser = options.browser;
    this.lastingSinks = [
      ...(options.tile ? [options.tile] : []),
      ...(browser ? [{ write: browser.write.bind(browser), keepsImages: browser.keepsImages, close: async () => undefined }] : []),
    ];
  }

  /** The sender's stream (again, after a reconnect or a restart). */
  streamStarted(stream: StreamDescription, senderName: string | undefined): void {
    this.stream = stream;
    this.label = senderName ?? stream.source ?? this.name;
    this.liveness.setFps(stream.fps);
  }

  /**
   * A checked frame, before decoding: it is alive, the browser server keeps JPEG payloads and
   * H.264 access units to forward, and an MP4 recording of an h264 stream writes the access unit.
   */
  frameArrived(header: FrameHeader, payload: Buffer, now = performance.now()): void {
    const stoppedForMs = this.liveness.frame(now);
    if (stoppedForMs !== undefined) this.log(`frames again after ${(stoppedForMs / 1000).toFixed(1)} s stopped`);
    this.lastSeq = header.seq;
    this.options.browser?.received(header, payload);
    this.recordings.onFrame(header, payload);
  }

  /** Whether the browser server or a recording keeps this frame's payload (then it must never be reused). */
  keepsPayload(header: FrameHeader): boolean {
    // H.264 payloads are small: always kept rather than asking who holds them (browser, MP4 recording).
    return header.encoding === 'h264' || (this.options.browser !== undefined && header.encoding === 'jpeg');
  }

  /** Checks whether it stopped; logs it once when it does. */
  checkLiveness(now = performance.now()): void {
    if (this.liveness.check(now)) {
      this.log(`STOPPED: no frame for ${this.liveness.thresholdMs} ms${this.lastSeq === undefined ? '' : ` (last frame ${this.lastSeq})`}`);
    }
  }

  /** Its figures: of the last second (`interval`), or of the whole run. */
  figures(kind: 'interval' | 'summary', now = performance.now()): CameraFigures {
    const snapshot = kind === 'interval' ? this.stats.takeInterval() : this.stats.summary();
    const figures: CameraFigures = {
      ...snapshot,
      camera: this.name,
      label: this.label,
      transport: this.transport,
      state: this.liveness.state,
      stoppedForMs: this.liveness.stoppedForMs(now),
      lastSeq: this.lastSeq ?? null,
    };
    if (kind === 'interval') this.lastInterval = figures;
    return figures;
  }

  /** One line per recording: how many frames it holds and how many it dropped. */
  recordingReport(): string[] {
    return this.recordings.report();
  }
}

/** The stats line of a camera: the receiver's line, and STOPPED while it is. */
export function formatCameraLine(figures: CameraFigures): string {
  const line = formatStatsLine(figures, figures.transport === 'nats');
  if (figures.state === 'stopped') return `${line}, STOPPED for ${((figures.stoppedForMs ?? 0) / 1000).toFixed(1)} s`;
  if (figures.state === 'waiting') return `${line}, no frame yet`;
  return line;
}

/** out.avi and camera "porch" -> out-porch.avi; characters a file name should not have become '-'. */
export function recordingFileFor(file: string, camera: string): string {
  const ext = extname(file);
  const safe = camera.replace(/[^A-Za-z0-9_.-]/g, '-');
  return `${file.slice(0, file.length - ext.length)}-${safe}${ext}`;
}
