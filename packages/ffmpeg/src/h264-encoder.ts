import type { RawImage } from '@camstream/media';
import { NalType } from './annexb';
import { AnnexBError, FfmpegBusyError, FfmpegClosedError, FfmpegExitedError, FrameShapeError } from './errors';
import { defaultFfmpegPath, FfmpegProcess } from './ffmpeg-process';
import { FlvAvcReader } from './flv';

export type X264Preset = 'ultrafast' | 'superfast' | 'veryfast' | 'faster' | 'fast' | 'medium';

/**
 * Defaults chosen from bench/h264-bench.ts at 720p30: ultrafast is the only x264 preset within
 * 0.3 of a core here (0.15-0.23; superfast 0.5, veryfast 0.6). CRF 21 gives the test pattern 11 %
 * of JPEG q80's bitrate at JPEG's SSIM; on the noisy synthetic clip it gives 23 % at SSIM 0.901
 * against JPEG's 0.917 (matching JPEG's SSIM there takes CRF 19 and 97 % of its bitrate). No
 * bitrate cap by default: callers that must bound the rate set maxBitrateKbps.
 */
export const H264_DEFAULTS = {
  preset: 'ultrafast' as X264Preset,
  crf: 21,
  keyframeIntervalSeconds: 2,
  /** VBV buffer as milliseconds at the capped bitrate: the largest burst (a keyframe) the cap allows. */
  vbvBufferMs: 500,
  threads: 1,
  maxPendingFrames: 8,
} as const;

export interface H264EncoderOptions {
  width: number;
  height: number;
  /** Frame rate of the source; x264's rate control spreads the bitrate over it. */
  fps: number;
  x264Preset?: X264Preset;
  /** Constant rate factor 0..51, lower is better and bigger (default H264_DEFAULTS.crf). Ignored with `bitrateKbps`. */
  crf?: number;
  /** Average bitrate rate control at this target, in kbit/s, instead of CRF; the VBV caps it at the same rate. */
  bitrateKbps?: number;
  /** Caps CRF's bitrate (x264 VBV max rate), kbit/s; default no cap. */
  maxBitrateKbps?: number;
  /** VBV buffer in milliseconds at the cap: how large a keyframe may get (default 500). */
  vbvBufferMs?: number;
  /** Frames between keyframes; default `keyframeIntervalSeconds` (2) worth of frames. */
  keyframeInterval?: number;
  keyframeIntervalSeconds?: number;
  /** x264 threads (default 1: least CPU; more threads encode slices in parallel for lower latency at high resolutions). */
  threads?: number;
  /** Frames allowed in the encoder at once; more are refused with FfmpegBusyError (default 8). */
  maxPendingFrames?: number;
  /**
   * Keep a second ffmpeg process started and waiting (default true), so that requestKeyframe()
   * costs an x264 start-up rather than a process start (720p, loaded 2-core machine: the frame
   * after a request took about 110 ms instead of 300 ms; other frames about 10 ms).
   */
  keepSpareProcess?: boolean;
  /** The ffmpeg program (default: CAMSTREAM_FFMPEG or `ffmpeg` on the PATH). */
  ffmpegPath?: string;
}

export interface EncodedAccessUnit {
  /** One access unit, Annex B: an AUD first; SPS and PPS before the slices of a keyframe. */
  readonly data: Buffer;
  /** An IDR picture (NAL type 5): a decoder can start here. */
  readonly keyframe: boolean;
  /** This frame's number among all frames given to this encoder, from 0. */
  readonly frameNumber: number;
  /** Milliseconds from handing the frame to ffmpeg to having its access unit. */
  readonly encodeMs: number;
}

/** How long close() lets ffmpeg finish before it is killed. */
const CLOSE_GRACE_MS = 5000;

/**
 * H.264 encoder: ffmpeg with libx264 as a child process, fed raw BGR frames on stdin and
 * writing one access unit per frame (FLV-framed on stdout, see flv.ts). x264 runs with no
 * B-frames, no lookahead and frame slicing off (`-tune zerolatency`), so each frame's access
 * unit leaves the encoder as soon as that frame is encoded: encode() resolves with exactly one
 * access unit per frame, in order. Every access unit starts with an AUD; every keyframe
 * carries SPS and PPS (repeat-headers), so a decoder can start at any keyframe.
 *
 * x264 cannot be told through ffmpeg's stdin to make a keyframe now. requestKeyframe() makes
 * the next frame go to a fresh ffmpeg process, whose first frame is an IDR picture with the same
 * parameters (the old process finishes the frames it has and exits); a spare process is kept
 * started so that this costs an encoder start-up, not a process start.
 */
export class H264Encoder {
  private current: EncoderProcess;
  private spare: EncoderProcess | undefined;
  private readonly args: string[];
  private readonly program: string;
  private readonly maxPendingFrames: number;
  private readonly maxAccessUnitBytes: number;
  private readonly keepSpare: boolean;
  private frameNumber = 0;
  private pendingFrames = 0;
  private keyframeRequested = false;
  private lastResult: Promise<unknown> = Promise.resolve();
  private failure: Error | undefined;
  private closing: Promise<void> | undefined;
  private processesStarted = 0;
  /** Processes replaced at a keyframe request, still finishing their last frames. */
  private readonly retiring = new Set<Promise<void>>();

  /** Starts ffmpeg at once; throws FfmpegNotFoundError if it cannot, RangeError on bad options. */
  constructor(readonly options: H264EncoderOptions) {
    this.args = encoderArgs(options);
    this.program = options.ffmpegPath ?? defaultFfmpegPath();
    this.maxPendingFrames = options.maxPendingFrames ?? H264_DEFAULTS.maxPendingFrames;
    this.maxAccessUnitBytes = options.width * options.height * 3 + 65536;
    this.keepSpare = options.keepSpareProcess ?? true;
    this.current = this.startProcess();
    if (this.keepSpare) this.spare = this.startProcess();
  }

  /** ffmpeg processes started so far (1, plus one per keyframe request, plus the spares). */
  get processCount(): number {
    return this.processesStarted;
  }

  /** The ffmpeg processes running now: the one encoding and the spare (for monitoring and tests). */
  get processIds(): number[] {
    return [this.current, this.spare].flatMap((p) => (p?.running ? [p.pid] : []));
  }

  /** Frames handed to ffmpeg whose access unit has not come back yet. */
  get pending(): number {
    return this.pendingFrames;
  }

  /**
   * Encodes one BGR image of the encoder's size. Resolves with its access unit; rejects with
   * FrameShapeError (wrong size), FfmpegBusyError (too many frames pending: drop this one),
   * FfmpegExitedError (ffmpeg died: the encoder has failed) or FfmpegClosedError. The caller
   * must not change `image.data` until the promise settles.
   */
  encode(image: RawImage): Promise<EncodedAccessUnit> {
    if (this.closing) return Promise.reject(new FfmpegClosedError('the H.264 encoder'));
    if (this.failure) return Promise.reject(this.failure);
    const { width, height } = this.options;
    if (image.width !== width || image.height !== height || image.channels !== 3 || image.data.length !== width * height * 3) {
      return Promise.reject(
        new FrameShapeError(`the H.264 encoder takes ${width}x${height} BGR images (${width * height * 3} bytes), got ${image.width}x${image.height}x${image.channels} (${image.data.length} bytes)`),
      );
    }
    if (this.pendingFrames >= this.maxPendingFrames) {
      return Promise.reject(new FfmpegBusyError(`the H.264 encoder already has ${this.pendingFrames} frames pending (at most ${this.maxPendingFrames}); drop this one`));
    }
    if (this.keyframeRequested) this.switchProcess();
    this.keyframeRequested = false;
    const frameNumber = this.frameNumber++;
    this.pendingFrames++;
    const encoded = this.current.submit(image.data);
    encoded.catch(() => undefined); // handled below, maybe only after the frames before it settle
    // Access units leave in frame order, also across a switch to a new process.
    const inOrder = this.lastResult.then(
      () => encoded,
      () => encoded,
    );
    this.lastResult = inOrder;
    return inOrder.then(
      (packet) => {
        this.pendingFrames--;
        return { ...packet, frameNumber };
      },
      (error: Error) => {
        this.pendingFrames--;
        if (error instanceof FfmpegExitedError || error instanceof AnnexBError) this.failure ??= error;
        throw error;
      },
    );
  }

  /** The next frame given to encode() will be a keyframe (see the class comment for how). */
  requestKeyframe(): void {
    this.keyframeRequested = true;
  }

  /** Ends the ffmpeg processes: pending frames are encoded first (up to 5 s). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const processes = [this.current, this.spare].filter((p): p is EncoderProcess => p !== undefined);
      this.spare = undefined;
      await Promise.all([...processes.map((p) => p.finish()), ...this.retiring]);
    })();
    return this.closing;
  }

  private startProcess(): EncoderProcess {
    this.processesStarted++;
    return new EncoderProcess(new FfmpegProcess(this.program, this.args), this.maxAccessUnitBytes);
  }

  private switchProcess(): void {
    const old = this.current;
    const spare = this.spare?.usable ? this.spare : undefined;
    if (this.spare && !spare) this.retire(this.spare);
    this.current = spare ?? this.startProcess();
    this.spare = this.keepSpare ? this.startProcess() : undefined;
    // Its stdin ends: it encodes the frames it has, hands them over, and exits.
    this.retire(old);
  }

  private retire(process: EncoderProcess): void {
    const finished = process.finish();
    this.retiring.add(finished);
    void finished.then(() => this.retiring.delete(finished));
  }
}

interface PendingFrame {
  resolve(packet: { data: Buffer; keyframe: boolean; encodeMs: number }): void;
  reject(error: Error): void;
  writtenAt: number;
}

/** One ffmpeg process of an encoder: frames in on stdin, access units out in the same order. */
class EncoderProcess {
  private readonly pending: PendingFrame[] = [];
  private readonly reader: FlvAvcReader;
  private failure: Error | undefined;
  private finishing = false;

  constructor(
    private readonly process: FfmpegProcess,
    maxAccessUnitBytes: number,
  ) {
    this.reader = new FlvAvcReader(maxAccessUnitBytes);
    process.child.stdout!.on('data', (chunk: Buffer) => this.read(chunk));
    void process.exited.then(() => {
      const message = this.finishing && process.exitedWith?.code === 0 ? 'the encoder process ended before encoding this frame' : `the H.264 encoder stopped: ${process.describeExit()}`;
      this.fail(new FfmpegExitedError(message));
    });
    this.updateKeepsAlive();
  }

  get pid(): number {
    return this.process.pid;
  }

  get running(): boolean {
    return this.process.running;
  }

  /** Still running and taking frames (a spare that died is not). */
  get usable(): boolean {
    return this.process.running && !this.failure && !this.finishing;
  }

  submit(frame: Buffer): Promise<{ data: Buffer; keyframe: boolean; encodeMs: number }> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject, writtenAt: performance.now() });
      this.updateKeepsAlive();
      this.process.child.stdin!.write(frame);
    });
  }

  /** Ends stdin: ffmpeg encodes what it has, then exits. Resolves once it is gone. */
  async finish(): Promise<void> {
    this.finishing = true;
    this.updateKeepsAlive();
    await this.process.close(CLOSE_GRACE_MS);
  }

  private read(chunk: Buffer): void {
    let packets;
    try {
      packets = this.reader.push(chunk);
    } catch (error) {
      this.fail(error as Error);
      this.process.kill();
      return;
    }
    for (const packet of packets) {
      const frame = this.pending.shift();
      if (!frame) {
        this.fail(new AnnexBError('the encoder produced an access unit for no frame (more output than input)'));
        this.process.kill();
        return;
      }
      let data: Buffer;
      try {
        data = fromFirstAud(packet.annexB);
      } catch (error) {
        frame.reject(error as Error);
        continue;
      }
      frame.resolve({ data, keyframe: hasIdrSlice(data), encodeMs: performance.now() - frame.writtenAt });
    }
    this.updateKeepsAlive();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const frame of this.pending.splice(0)) frame.reject(this.failure);
    this.updateKeepsAlive();
  }

  /** Only a process with frames in it keeps our process alive: an idle or spare one must not. */
  private updateKeepsAlive(): void {
    if (this.process.running) this.process.setKeepsAlive(this.pending.length > 0 || this.finishing);
  }
}

/**
 * The access unit from its AUD on. With the global headers FLV asks for, ffmpeg's libx264
 * wrapper puts x264's own SEI (its version and settings) in front of the first packet, before
 * the AUD, where an access unit may not have it; the same SEI follows inside.
 */
function fromFirstAud(annexB: Buffer): Buffer {
  // FLV packets use 4-byte start codes; the first NAL unit's header is at 4.
  let at = 0;
  while (at + 4 < annexB.length) {
    if ((annexB[at + 4]! & 0x1f) === NalType.AUD) return at === 0 ? annexB : annexB.subarray(at);
    const next = annexB.indexOf(START_CODE, at + 4);
    if (next < 0) break;
    at = next;
  }
  throw new AnnexBError('the encoder produced an access unit without an access unit delimiter (is aud=1 lost?)');
}

const START_CODE = Buffer.from([0, 0, 0, 1]);

function hasIdrSlice(annexB: Buffer): boolean {
  for (let at = annexB.indexOf(START_CODE); at >= 0 && at + 4 < annexB.length; at = annexB.indexOf(START_CODE, at + 4)) {
    if ((annexB[at + 4]! & 0x1f) === NalType.IDR_SLICE) return true;
  }
  return false;
}

function positiveInteger(value: number, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < 1 || value > max) throw new RangeError(`${what} must be a whole number from 1 to ${max}, got ${value}`);
  return value;
}

/** The ffmpeg command line of an encoder process (exported for the bench and tests). */
export function encoderArgs(options: H264EncoderOptions): string[] {
  const width = positiveInteger(options.width, 'width', 16384);
  const height = positiveInteger(options.height, 'height', 16384);
  if (width % 2 || height % 2) throw new RangeError(`H.264 4:2:0 needs an even width and height, got ${width}x${height}`);
  const { fps } = options;
  if (!Number.isFinite(fps) || fps <= 0 || fps > 1000) throw new RangeError(`fps must be more than 0 and at most 1000, got ${fps}`);
  const keyframeInterval = positiveInteger(
    options.keyframeInterval ?? Math.max(1, Math.round(fps * (options.keyframeIntervalSeconds ?? H264_DEFAULTS.keyframeIntervalSeconds))),
    'keyframe interval (frames)',
  );
  const threads = positiveInteger(options.threads ?? H264_DEFAULTS.threads, 'threads', 64);
  const preset = options.x264Preset ?? H264_DEFAULTS.preset;
  const params = [
    'aud=1', // an access unit delimiter first in every access unit: where one starts is plain
    'repeat-headers=1', // SPS and PPS before every keyframe: a receiver can start at any of them
    'bframes=0',
    'rc-lookahead=0',
    'sync-lookahead=0',
    `keyint=${keyframeInterval}`,
    `min-keyint=${keyframeInterval}`,
    'scenecut=0', // keyframes exactly every keyint frames: predictable sizes and join points
  ];
  const vbvMs = options.vbvBufferMs ?? H264_DEFAULTS.vbvBufferMs;
  if (!Number.isFinite(vbvMs) || vbvMs <= 0) throw new RangeError(`vbvBufferMs must be more than 0, got ${vbvMs}`);
  const vbv = (kbps: number) => [`vbv-maxrate=${kbps}`, `vbv-bufsize=${Math.max(1, Math.round((kbps * vbvMs) / 1000))}`];
  if (options.bitrateKbps !== undefined) {
    const bitrate = positiveInteger(options.bitrateKbps, 'bitrateKbps', 1_000_000);
    params.push(`bitrate=${bitrate}`, ...vbv(options.maxBitrateKbps ?? bitrate));
  } else {
    const crf = options.crf ?? H264_DEFAULTS.crf;
    if (!Number.isFinite(crf) || crf < 0 || crf > 51) throw new RangeError(`crf must be from 0 to 51, got ${crf}`);
    params.push(`crf=${crf}`);
    if (options.maxBitrateKbps !== undefined) params.push(...vbv(positiveInteger(options.maxBitrateKbps, 'maxBitrateKbps', 1_000_000)));
  }
  return [
    '-hide_banner', '-nostdin', '-nostats', '-loglevel', 'level+warning',
    '-f', 'rawvideo', '-pix_fmt', 'bgr24', '-s', `${width}x${height}`, '-framerate', String(fps), '-i', 'pipe:0',
    '-an', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-preset', preset, '-tune', 'zerolatency',
    // BT.601 limited range is what swscale converts BGR to; say so in the VUI so browsers convert back the same way.
    '-colorspace', 'smpte170m', '-color_range', 'tv',
    '-threads', String(threads), '-x264-params', params.join(':'),
    '-fps_mode', 'passthrough', '-flush_packets', '1', '-f', 'flv', 'pipe:1',
  ];
}
