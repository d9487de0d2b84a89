import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { inspectAccessUnit } from './annexb';
import { Mp4RecorderError, StreamMismatchError } from './errors';
import { defaultFfmpegPath, FfmpegProcess } from './ffmpeg-process';
import { ivfFileHeader, ivfFrameHeader } from './ivf';

export interface Mp4RecorderOptions {
  /** The stream's picture size: keyframes announcing another are refused. */
  width: number;
  height: number;
  /**
   * Timestamps at this constant frame rate. Without it, each frame's `captureTime` (given to
   * write) sets its timestamp, so the file plays at the pace the frames were captured.
   */
  fps?: number;
  /**
   * Fragmented MP4 (default true): a fragment per keyframe interval, each complete on disk, so a
   * recorder killed outright still leaves a playable file of all but the last fragment; close()
   * adds an index of the fragments at the front (global sidx) for duration and seeking. false
   * writes a plain MP4 with its index moved to the front on close (faststart), which is playable
   * only once close() has finished.
   */
  fragmented?: boolean;
  /** Bytes allowed to wait for ffmpeg; past that, frames are skipped until the next keyframe (default 32 MiB). */
  maxBufferedBytes?: number;
  ffmpegPath?: string;
}

export interface RecordedFrameMeta {
  /** The frame's capture time, milliseconds since the Unix epoch (the protocol's `captureTime`). */
  readonly captureTime?: number;
}

/** MP4's customary time base for video; capture times are kept to 1/90 ms. */
const TIMESCALE = 90_000;
const DEFAULT_MAX_BUFFERED_BYTES = 32 * 1024 * 1024;
const CLOSE_GRACE_MS = 15_000;

/**
 * Records received H.264 access units into an MP4 file without re-encoding (ffmpeg -c copy),
 * playable in browsers (H.264 in MP4; see the README for what Chromium does with it). The file
 * starts at a keyframe: access units before the first one are skipped (`skippedFrames`); after
 * that, every access unit given is one frame of the file (`writtenFrames`).
 *
 * A FrameSink for encoded frames: write() never queues without bound. When ffmpeg falls behind
 * by more than `maxBufferedBytes`, frames are skipped up to the next keyframe (a P-frame without
 * the frames before it would decode to garbage).
 */
export class Mp4Recorder {
  private readonly process: FfmpegProcess;
  private readonly maxBufferedBytes: number;
  private readonly fragmented: boolean;
  private waitingForKeyframe = true;
  private firstCaptureTime: number | undefined;
  private lastTimestamp = -1;
  private written = 0;
  private skipped = 0;
  private failure: Error | undefined;
  private closing: Promise<void> | undefined;

  /** Starts ffmpeg; throws Mp4RecorderError when the directory does not exist, FfmpegNotFoundError without ffmpeg. */
  constructor(
    readonly path: string,
    readonly options: Mp4RecorderOptions,
  ) {
    const { width, height, fps } = options;
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
      throw new RangeError(`recording size must be positive whole numbers, got ${width}x${height}`);
    }
    if (fps !== undefined && (!Number.isFinite(fps) || fps <= 0 || fps > 1000)) throw new RangeError(`recording fps must be more than 0 and at most 1000, got ${fps}`);
    const directory = dirname(resolve(path));
    let isDirectory = false;
    try {
      isDirectory = statSync(directory).isDirectory();
    } catch {
      // missing: reported below
    }
    if (!isDirectory) throw new Mp4RecorderError(`cannot record to ${path}: the directory ${directory} does not exist`);
    this.maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    this.fragmented = options.fragmented ?? true;
    this.process = new FfmpegProcess(options.ffmpegPath ?? defaultFfmpegPath(), recorderArgs(resolve(path), this.fragmented));
    void this.process.exited.then((status) => {
      if (!this.closing || status.code !== 0) this.failure ??= new Mp4RecorderError(`recording ${path} stopped: ${this.process.describeExit()}`);
    });
    this.process.child.stdin!.write(ivfFileHeader({ width, height, timeBaseDenominator: TIMESCALE }));
    // An idle recorder must not keep the program alive; if it ends without close(), ffmpeg sees
    // its stdin close and finishes the file.
    this.process.setKeepsAlive(false);
  }

  get writtenFrames(): number {
    return this.written;
  }

  /** Access units not recorded: before the first keyframe, or up to a keyframe after a refusal or overload. */
  get skippedFrames(): number {
    return this.skipped;
  }

  /**
   * Records one access unit (Annex B, as the encoder or the wire delivers it). Resolves once it is
   * in ffmpeg's pipe (the caller must not change the bytes until then) or was skipped; rejects
   * with AnnexBError or StreamMismatchError for an access unit it refuses (recording goes on from
   * the next keyframe), Mp4RecorderError when ffmpeg failed or the recorder is closed.
   */
  write(accessUnit: Buffer, meta: RecordedFrameMeta = {}): Promise<void> {
    if (this.closing) return Promise.reject(new Mp4RecorderError(`recording ${this.path} is closed`));
    if (this.failure) return Promise.reject(this.failure);
    let keyframe: boolean;
    try {
      const info = inspectAccessUnit(accessUnit, { maxAccessUnitBytes: this.options.width * this.options.height * 3 + 65536 });
      if (info.sps && (info.sps.width !== this.options.width || info.sps.height !== this.options.height)) {
        throw new StreamMismatchError(`access unit's SPS announces ${info.sps.width}x${info.sps.height}, the recording is ${this.options.width}x${this.options.height}`);
      }
      keyframe = info.keyframe && info.sps !== undefined && info.hasPps;
    } catch (error) {
      this.waitingForKeyframe = true;
      this.skipped++;
      return Promise.reject(error);
    }
    const stdin = this.process.child.stdin!;
    const overloaded = stdin.writableLength > this.maxBufferedBytes;
    if (overloaded || (!keyframe && this.waitingForKeyframe)) {
      this.waitingForKeyframe = true;
      this.skipped++;
      return Promise.resolve();
    }
    const timestamp = this.timestampOf(meta);
    if (timestamp instanceof Error) return Promise.reject(timestamp);
    this.waitingForKeyframe = false;
    this.lastTimestamp = timestamp;
    this.written++;
    this.process.setKeepsAlive(true);
    return new Promise((resolveWrite, rejectWrite) => {
      stdin.cork();
      stdin.write(ivfFrameHeader(accessUnit.length, timestamp));
      stdin.write(accessUnit, (error) => {
        if (stdin.writableLength === 0 && !this.closing) this.process.setKeepsAlive(false);
        if (error) rejectWrite(this.failure ?? new Mp4RecorderError(`recording ${this.path}: ${error.message}`, { cause: error }));
        else resolveWrite();
      });
      stdin.uncork();
    });
  }

  /** Finishes the file: ffmpeg writes what it has, then exits. Rejects if it failed. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.process.setKeepsAlive(true);
      const status = await this.process.close(CLOSE_GRACE_MS);
      if (this.written > 0 && (status.code !== 0 || this.failure)) {
        throw this.failure ?? new Mp4RecorderError(`recording ${this.path} failed: ${this.process.describeExit(status)}`);
      }
    })();
    return this.closing;
  }

  /** Stops ffmpeg at once (a fragmented file keeps its complete fragments). */
  kill(): void {
    this.process.kill();
  }

  get pid(): number {
    return this.process.pid;
  }

  /** The frame's timestamp in 1/90000 s, strictly after the last one, or why there is none. */
  private timestampOf(meta: RecordedFrameMeta): number | Error {
    let timestamp: number;
    const { fps } = this.options;
    if (fps !== undefined) {
      timestamp = Math.round((this.written * TIMESCALE) / fps);
    } else {
      const { captureTime } = meta;
      if (captureTime === undefined || !Number.isFinite(captureTime)) {
        return new RangeError(`recording ${this.path} takes its timestamps from capture times (no fps given), but this frame has none`);
      }
      this.firstCaptureTime ??= captureTime;
      timestamp = Math.round(((captureTime - this.firstCaptureTime) * TIMESCALE) / 1000);
    }
    return Math.max(timestamp, this.lastTimestamp + 1);
  }
}

/** The ffmpeg command line of a recorder (exported for tests). */
export function recorderArgs(path: string, fragmented: boolean): string[] {
  return [
    '-hide_banner', '-nostdin', '-nostats', '-loglevel', 'level+warning',
    // Write from the first packet on, rather than after 5 s of probing: a killed recorder keeps more.
    '-probesize', '32', '-analyzeduration', '0', '-fpsprobesize', '0',
    '-f', 'ivf', '-i', 'pipe:0',
    '-c', 'copy',
    // global_sidx: on close, an index of all fragments goes to the front, from which browsers
    // learn the whole duration (without it Chromium reports the first fragment's).
    '-movflags', fragmented ? '+frag_keyframe+empty_moov+default_base_moof+global_sidx' : '+faststart',
    // Each finished fragment goes to disk at once, not when ffmpeg's 32 KiB write buffer fills.
    '-flush_packets', '1',
    '-f', 'mp4', '-y', path,
  ];
}
