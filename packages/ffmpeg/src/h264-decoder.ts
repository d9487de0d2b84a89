import type { RawImage } from '@camstream/media';
import { inspectAccessUnit } from './annexb';
import { DecodeError, FfmpegBusyError, FfmpegClosedError, FfmpegExitedError, NotKeyframeError, StreamMismatchError } from './errors';
import { defaultFfmpegPath, FfmpegProcess } from './ffmpeg-process';
import { ivfFileHeader, ivfFrameHeader } from './ivf';

export interface H264DecoderOptions {
  /** The stream's picture size: every SPS must announce it, every frame comes out at it. */
  width: number;
  height: number;
  /** Access units allowed in the decoder at once; more are refused with FfmpegBusyError (default 8). */
  maxPendingAccessUnits?: number;
  /** The ffmpeg program (default: CAMSTREAM_FFMPEG or `ffmpeg` on the PATH). */
  ffmpegPath?: string;
  /** A process started ahead (see PreparedH264Decoder): used if it still runs, else a new one is started. */
  prepared?: PreparedH264Decoder;
}

export interface DecodedFrame {
  /** The picture as BGR, the decoder's size; `data` is the caller's `into` buffer when one was given. */
  readonly image: RawImage;
  readonly keyframe: boolean;
  /**
   * The decoder met errors in this access unit (or in a picture it refers to) and concealed them:
   * the picture has damage until the next keyframe. `decoderMessages` says what.
   */
  readonly damaged: boolean;
  readonly decoderMessages: readonly string[];
  /** Milliseconds from handing the access unit to ffmpeg to having the whole picture. */
  readonly decodeMs: number;
}

const DEFAULT_MAX_PENDING = 8;
/** Decoder messages kept per access unit. */
const MAX_MESSAGES = 5;
const CLOSE_GRACE_MS = 5000;
/**
 * Sent after every access unit: the 4 bytes "Q264", which FFmpeg's H.264 parser passes over
 * without a word (a magic it knows) and its decoder refuses at once without touching its state.
 * ffmpeg logs (with -debug_ts) that it read this packet, which tells us that it has finished the
 * access unit before it: decoded and written its picture, or made none.
 */
const MARKER_PACKET = Buffer.from('Q264', 'latin1');

interface PendingAccessUnit {
  readonly index: number;
  readonly keyframe: boolean;
  readonly sentAt: number;
  into: Buffer | (() => Buffer) | undefined;
  buffer: Buffer | undefined;
  filled: number;
  /** ffmpeg said it decoded a picture of it. */
  decoded: boolean;
  /** ffmpeg read the marker after it: it is done with this access unit. */
  finished: boolean;
  damaged: boolean;
  readonly messages: string[];
  resolve(frame: DecodedFrame): void;
  reject(error: Error): void;
}

/**
 * H.264 decoder: an ffmpeg child process fed access units (in IVF, see ivf.ts) on stdin and
 * writing BGR pictures on stdout, one per access unit, as soon as it is decoded: no frame
 * threads (-threads 1, which would hold pictures back), -flags low_delay, no input probing.
 *
 * Which access unit a picture belongs to, and whether one made none, ffmpeg tells on stderr
 * (-debug_ts: a line for every packet read and every picture decoded, with our timestamps).
 * Access unit i goes in with timestamp 2i, followed by a marker packet with 2i + 1 (see
 * MARKER_PACKET), so decode() settles as soon as ffmpeg is done with its access unit, also when
 * it made no picture of it: a damaged access unit rejects with DecodeError and the stream goes
 * on (the decoder recovers at the next keyframe at the latest).
 *
 * Decoding must start at a keyframe with its SPS and PPS (NotKeyframeError otherwise), and every
 * SPS must announce the stream's size (StreamMismatchError); both are checked before ffmpeg
 * sees the bytes, as is the access unit's structure (AnnexBError).
 */
export class H264Decoder {
  private readonly process: FfmpegProcess;
  private readonly frameBytes: number;
  private readonly maxPending: number;
  private readonly pending: PendingAccessUnit[] = [];
  private nextIndex = 0;
  private started = false;
  /** The access unit whose log lines ffmpeg is printing now; undefined between it and the next. */
  private logging: PendingAccessUnit | undefined;
  private failure: Error | undefined;
  private closing: Promise<void> | undefined;

  /** Starts ffmpeg at once; throws FfmpegNotFoundError if it cannot. */
  constructor(readonly options: H264DecoderOptions) {
    const { width, height } = options;
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width > 16384 || height > 16384) {
      throw new RangeError(`decoder size must be whole numbers from 1 to 16384, got ${width}x${height}`);
    }
    this.frameBytes = width * height * 3;
    this.maxPending = options.maxPendingAccessUnits ?? DEFAULT_MAX_PENDING;
    const prepared = options.prepared?.take();
    this.process = prepared ?? new FfmpegProcess(options.ffmpegPath ?? defaultFfmpegPath(), decoderArgs());
    this.process.onStderrLine = (line) => this.readLog(line);
    this.process.child.stdout!.on('data', (chunk: Buffer) => this.readPictures(chunk));
    void this.process.exited.then(() => this.fail(new FfmpegExitedError(`the H.264 decoder stopped: ${this.process.describeExit()}`)));
    this.process.child.stdin!.write(ivfFileHeader({ width, height, timeBaseDenominator: 60 }));
    this.updateKeepsAlive();
  }

  /**
   * Decodes one access unit (Annex B). `into`, if given, is a buffer of exactly width * height * 3
   * bytes for the picture, or a function returning one, called once the picture starts to
   * arrive. Resolves with the picture; rejects with AnnexBError, NotKeyframeError or
   * StreamMismatchError (refused before decoding), DecodeError (no picture from it; later
   * access units still decode), FfmpegBusyError, FfmpegExitedError or FfmpegClosedError.
   * Pictures come out in the order the access units went in.
   */
  decode(accessUnit: Buffer, into?: Buffer | (() => Buffer)): Promise<DecodedFrame> {
    if (this.closing) return Promise.reject(new FfmpegClosedError('the H.264 decoder'));
    if (this.failure) return Promise.reject(this.failure);
    if (this.pending.length >= this.maxPending) {
      return Promise.reject(new FfmpegBusyError(`the H.264 decoder already has ${this.pending.length} access units pending (at most ${this.maxPending}); drop this one`));
    }
    if (Buffer.isBuffer(into) && into.length !== this.frameBytes) {
      return Promise.reject(new RangeError(`into must have ${this.frameBytes} bytes (${this.options.width}x${this.options.height} BGR), got ${into.length}`));
    }
    let keyframe: boolean;
    try {
      keyframe = this.check(accessUnit);
    } catch (error) {
      return Promise.reject(error);
    }
    this.started = true;
    const index = this.nextIndex++;
    return new Promise<DecodedFrame>((resolve, reject) => {
      this.pending.push({ index, keyframe, sentAt: performance.now(), into, buffer: undefined, filled: 0, decoded: false, finished: false, damaged: false, messages: [], resolve, reject });
      this.updateKeepsAlive();
      const stdin = this.process.child.stdin!;
      stdin.cork();
      stdin.write(ivfFrameHeader(accessUnit.length, 2 * index));
      stdin.write(accessUnit);
      stdin.write(ivfFrameHeader(MARKER_PACKET.length, 2 * index + 1));
      stdin.write(MARKER_PACKET);
      stdin.uncork();
    });
  }

  /** Ends ffmpeg; access units already given are decoded first (up to 5 s). */
  close(): Promise<void> {
    this.closing ??= this.process.close(CLOSE_GRACE_MS).then(() => undefined);
    return this.closing;
  }

  /** Kills ffmpeg at once; pending decodes reject. */
  kill(): void {
    this.process.kill();
  }

  get pid(): number {
    return this.process.pid;
  }

  /** Throws if the access unit must not reach the decoder; returns whether it is a keyframe. */
  private check(accessUnit: Buffer): boolean {
    const { width, height } = this.options;
    const info = inspectAccessUnit(accessUnit, { maxAccessUnitBytes: this.frameBytes + 65536 });
    if (!this.started && !(info.keyframe && info.sps && info.hasPps)) {
      throw new NotKeyframeError(
        `decoding must start at a keyframe with its SPS and PPS; this access unit (NAL types ${info.nalTypes.join(',')}) is ${info.keyframe ? 'a keyframe without SPS and PPS' : 'not a keyframe'}`,
      );
    }
    if (info.sps && (info.sps.width !== width || info.sps.height !== height)) {
      throw new StreamMismatchError(`access unit's SPS announces ${info.sps.width}x${info.sps.height}, the stream is ${width}x${height}`);
    }
    return info.keyframe;
  }

  private readLog(line: string): void {
    const read = /\] demuxer -> .* pkt_pts:(\d+) /.exec(line);
    if (read) {
      const timestamp = Number(read[1]);
      const unit = this.pending.find((candidate) => candidate.index === Math.floor(timestamp / 2));
      if (timestamp % 2 === 0) {
        this.logging = unit;
      } else {
        this.logging = undefined;
        if (unit) {
          unit.finished = true;
          if (!unit.decoded) this.reassignPictureBytes(unit);
        }
        this.settle();
      }
      return;
    }
    const decoded = /\] decoder -> .* frame_pts:(\d+) /.exec(line);
    if (decoded) {
      const unit = this.pending.find((candidate) => 2 * candidate.index === Number(decoded[1]));
      if (unit) unit.decoded = true;
      return;
    }
    const unit = this.logging;
    if (!unit) return; // start-up chatter, or what the marker packet makes the decoder say
    if (/corrupt decoded frame/.test(line)) unit.damaged = true;
    else if (/\[(error|warning)\]/.test(line) && unit.messages.length < MAX_MESSAGES) unit.messages.push(line.replace(/^.*?\[(error|warning)\] /, ''));
  }

  /** Copies stdout bytes into the pictures of pending access units, in order. */
  private readPictures(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      const unit = this.pending.find((candidate) => !(candidate.finished && !candidate.decoded) && candidate.filled < this.frameBytes);
      if (!unit) {
        this.fail(new FfmpegExitedError('the H.264 decoder wrote a picture for no access unit'));
        this.process.kill();
        return;
      }
      const target = this.pictureBuffer(unit);
      const count = Math.min(chunk.length - at, this.frameBytes - unit.filled);
      chunk.copy(target, unit.filled, at, at + count);
      unit.filled += count;
      at += count;
    }
    this.settle();
  }

  private pictureBuffer(unit: PendingAccessUnit): Buffer {
    if (!unit.buffer) {
      const into = typeof unit.into === 'function' ? unit.into() : unit.into;
      unit.buffer = into && into.length === this.frameBytes ? into : Buffer.allocUnsafe(this.frameBytes);
    }
    return unit.buffer;
  }

  /**
   * An access unit made no picture, but stdout bytes were already put in its buffer (stdout and
   * stderr are separate pipes; either may be read first): they belong to the next pictures. Rare.
   */
  private reassignPictureBytes(unit: PendingAccessUnit): void {
    if (unit.filled === 0) return;
    let carry = Buffer.from(unit.buffer!.subarray(0, unit.filled));
    unit.filled = 0;
    for (const later of this.pending.filter((candidate) => candidate.index > unit.index && !(candidate.finished && !candidate.decoded))) {
      const own = later.filled > 0 ? Buffer.from(later.buffer!.subarray(0, later.filled)) : Buffer.alloc(0);
      carry.copy(this.pictureBuffer(later), 0);
      later.filled = carry.length;
      carry = own;
      if (carry.length === 0) return;
    }
    if (carry.length > 0) {
      this.fail(new FfmpegExitedError('the H.264 decoder wrote a picture for no access unit'));
      this.process.kill();
    }
  }

  /** Settles finished access units from the oldest, so that results come in order. */
  private settle(): void {
    for (let unit = this.pending[0]; unit && unit.finished; unit = this.pending[0]) {
      if (unit.decoded && unit.filled < this.frameBytes) return; // its picture is still arriving
      this.pending.shift();
      if (unit.decoded) {
        const { width, height } = this.options;
        unit.resolve({
          image: { width, height, channels: 3, data: unit.buffer! },
          keyframe: unit.keyframe,
          damaged: unit.damaged || unit.messages.length > 0,
          decoderMessages: unit.messages,
          decodeMs: performance.now() - unit.sentAt,
        });
      } else {
        const said = unit.messages.length ? `: ${unit.messages.join(' | ')}` : '';
        unit.reject(new DecodeError(`access unit ${unit.index} gave no picture${said}`, unit.messages));
      }
    }
    this.updateKeepsAlive();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const unit of this.pending.splice(0)) unit.reject(this.failure);
    this.updateKeepsAlive();
  }

  /** Only a decoder with work in it keeps our process alive. */
  private updateKeepsAlive(): void {
    if (this.process.running) this.process.setKeepsAlive(this.pending.length > 0 || this.closing !== undefined);
  }
}

/**
 * A decoder's ffmpeg process, started before the stream is known: ffmpeg needs 130-180 ms here
 * to start (it loads some hundred libraries), which would otherwise come before a joiner's first
 * picture. It waits, idle and not keeping our process alive, until an H264Decoder takes it (the
 * stream's size is only written then) or close() ends it. It never throws: when ffmpeg cannot be
 * started, the decoder that finds nothing to take starts its own and reports why.
 */
export class PreparedH264Decoder {
  private process: FfmpegProcess | undefined;

  constructor(ffmpegPath: string = defaultFfmpegPath()) {
    try {
      this.process = new FfmpegProcess(ffmpegPath, decoderArgs());
      this.process.setKeepsAlive(false);
    } catch {
      this.process = undefined;
    }
  }

  /** Whether a process waits to be taken. */
  get ready(): boolean {
    return this.process?.running === true;
  }

  /** The waiting process's pid, if one waits. */
  get pid(): number | undefined {
    return this.ready ? this.process!.pid : undefined;
  }

  /** The waiting process, once; undefined if taken, closed or exited (a dead one is closed here). */
  take(): FfmpegProcess | undefined {
    const process = this.process;
    this.process = undefined;
    if (process?.running) return process;
    void process?.close(0);
    return undefined;
  }

  /** Ends the waiting process, if any (it has read nothing, so it exits at once). */
  async close(): Promise<void> {
    const process = this.process;
    this.process = undefined;
    await process?.close(CLOSE_GRACE_MS);
  }
}

/** The ffmpeg command line of a decoder process (exported for the bench and tests). */
export function decoderArgs(): string[] {
  return [
    '-hide_banner', '-nostdin', '-nostats',
    // -debug_ts prints (at info level) each packet read and each picture decoded: see H264Decoder.
    // "repeat": ffmpeg would otherwise fold identical lines into "Last message repeated N times".
    '-debug_ts', '-loglevel', 'repeat+level+info',
    // Start decoding at the first packet: no probing ahead for stream parameters or frame rate.
    '-probesize', '32', '-analyzeduration', '0', '-fpsprobesize', '0',
    '-flags', 'low_delay', '-threads', '1', '-f', 'ivf', '-i', 'pipe:0',
    // Frame threads in the rawvideo encoder would hold each picture until the next one.
    '-threads', '1', '-fps_mode', 'passthrough', '-pix_fmt', 'bgr24', '-f', 'rawvideo', '-flush_packets', '1',
    // The marker packets all "fail to decode"; that must not make ffmpeg report failure.
    '-max_error_rate', '1', 'pipe:1',
  ];
}
