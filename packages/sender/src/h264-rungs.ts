import type { EncodedRung, RungSource, RungSpec } from '@camstream/fanout';
import { FfmpegBusyError, H264_DEFAULTS, H264Encoder, type EncodedAccessUnit, type H264EncoderOptions } from '@camstream/ffmpeg';
import type { RawImage } from '@camstream/media';

/**
 * Rung 0 at the stream's bitrate, then 60 %, 35 % and 20 % of it: neighbours differ by 40-45 %,
 * so that some rung fills most of any link between a fifth and all of the stream's bitrate.
 */
export const H264_RUNG_FRACTIONS: readonly number[] = [1, 0.6, 0.35, 0.2];

/**
 * The VBV buffer of the rungs below rung 0, in ms at their bitrate: the largest keyframe they may
 * make. They serve links that cannot carry rung 0, where a keyframe crosses at about the rung's
 * bitrate: with the default 500 ms, one on a link at 55 % of rung 0 (which takes rung 2, 35 %)
 * took over 300 ms to cross, and every frame behind it waited.
 */
export const LOWER_RUNG_VBV_MS = 150;

/** An encoder nobody has been on for this long is stopped (a viewer that comes back within it finds it running). */
const DEFAULT_LINGER_MS = 10_000;

export interface H264RungsOptions {
  width: number;
  height: number;
  /** The source's frame rate; 0 (unpaced) counts as 30 for rate control and keyframe spacing. */
  fps: number;
  /** Rung 0's bitrate, bits per second. */
  bitrate: number;
  /** Constant quality instead of an average bitrate: x264 CRF, each rung capped at its bitrate. */
  crf?: number;
  /** Seconds between keyframes (default 2). */
  keyframeIntervalSeconds?: number;
  /** The VBV buffer in milliseconds at rung 0's bitrate: how far above it one frame (a keyframe) may go (lower rungs: at most LOWER_RUNG_VBV_MS). */
  vbvBufferMs?: number;
  /** Each rung's share of `bitrate`, rung 0 first (default H264_RUNG_FRACTIONS). */
  fractions?: readonly number[];
  /** Encoders nobody was on for this long are stopped (default 10 s). */
  lingerMs?: number;
  /** Starts an encoder (default: an H264Encoder, ffmpeg with libx264; tests count or break them). */
  startEncoder?: (options: H264EncoderOptions) => RungEncoderProcess;
  log?: (line: string) => void;
}

/** What a rung needs of an encoder (H264Encoder). */
export interface RungEncoderProcess {
  encode(image: RawImage): Promise<EncodedAccessUnit>;
  close(): Promise<void>;
}

interface Running {
  readonly encoder: RungEncoderProcess;
  /** Its coded sequence: frames of another encoder (an earlier run of the rung) never follow its frames. */
  readonly sequence: number;
  lastWantedAt: number;
  /** It has handed back an access unit: its frames come back in a few milliseconds now. */
  warm: boolean;
  failed: boolean;
}

/**
 * The H.264 rungs of a stream (PROTOCOL.md 4.4, 4.6): one encoder per rung in use, all at the
 * stream's size, each at its own bitrate. An encoder starts when a viewer is first on its rung
 * (its first frame is a keyframe) and stops once nobody has been on the rung for `lingerMs`; every
 * captured frame goes once to every running encoder, never once per viewer, so that a rung whose
 * viewers come back finds its sequence current. A frame an encoder refuses (8 are still being
 * encoded) gives no frame on that rung and its sequence goes on; an encoder that fails is replaced
 * by a new one (a new sequence, starting at a keyframe).
 *
 * Same size on every rung, because then a receiver keeps one decoder, a recording one file, and a
 * browser one VideoDecoder across rung switches; it costs an encode at full size per rung in use
 * (x264 ultrafast at 720p: about 0.2 of a core each).
 */
export class H264Rungs implements RungSource {
  readonly interCoded = true;
  readonly ladder: readonly RungSpec[];
  private readonly running = new Map<number, Running>();
  private nextSequence = 1;
  private readonly lingerMs: number;
  private readonly reaper: NodeJS.Timeout;
  private closed = false;
  /** Frames an encoder refused because it still had 8 to encode. */
  refused = 0;
  /** Encoders started so far (for figures and tests). */
  started = 0;

  constructor(private readonly options: H264RungsOptions) {
    const { width, height, bitrate } = options;
    if (!Number.isInteger(bitrate) || bitrate < 1000) throw new RangeError(`H.264 bitrate must be at least 1000 bits/s, got ${bitrate}`);
    const fractions = options.fractions ?? H264_RUNG_FRACTIONS;
    this.ladder = fractions.map((fraction) => ({ width, height, bitrate: Math.round(bitrate * fraction) }));
    this.lingerMs = options.lingerMs ?? DEFAULT_LINGER_MS;
    // Encoders also stop while nobody watches at all (then nothing is published to notice it).
    this.reaper = setInterval(() => this.stopIdle(performance.now()), Math.max(100, this.lingerMs / 2));
    this.reaper.unref();
  }

  /** Rungs whose encoder is running now. */
  get runningRungs(): number[] {
    return [...this.running.keys()].sort((a, b) => a - b);
  }

  isStarting(rung: number): boolean {
    const running = this.running.get(rung);
    return !running || !running.warm;
  }

  encodeEach(image: RawImage, rungs: Iterable<number>): Map<number, Promise<EncodedRung | undefined>> {
    const now = performance.now();
    for (const rung of rungs) {
      if (this.ladder[rung] === undefined) throw new RangeError(`no rung ${rung}: the ladder has ${this.ladder.length}`);
      const running = this.running.get(rung) ?? this.start(rung);
      if (running) running.lastWantedAt = now;
    }
    this.stopIdle(now);
    const results = new Map<number, Promise<EncodedRung | undefined>>();
    for (const [rung, running] of this.running) results.set(rung, this.encodeOn(rung, running, image));
    return results;
  }

  /** Stops every encoder (they finish the frames they have first). */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.reaper);
    const stopping = [...this.running.values()].map((r) => r.encoder.close());
    this.running.clear();
    await Promise.allSettled(stopping);
  }

  private start(rung: number): Running | undefined {
    if (this.closed) return undefined;
    const spec = this.ladder[rung]!;
    const { options } = this;
    const fps = options.fps > 0 ? options.fps : 30;
    const kbps = Math.max(1, Math.round(spec.bitrate! / 1000));
    const vbvBufferMs = options.vbvBufferMs ?? H264_DEFAULTS.vbvBufferMs;
    const encoderOptions: H264EncoderOptions = {
      width: spec.width,
      height: spec.height,
      fps,
      keyframeIntervalSeconds: options.keyframeIntervalSeconds ?? 2,
      ...(options.crf === undefined ? { bitrateKbps: kbps } : { crf: options.crf, maxBitrateKbps: kbps }),
      vbvBufferMs: rung === 0 ? vbvBufferMs : Math.min(vbvBufferMs, LOWER_RUNG_VBV_MS),
      // Keyframes come on schedule, never on request: no spare process is needed.
      keepSpareProcess: false,
      // A second of frames may wait in it: an encoder starting up (ffmpeg and x264, 0.3-0.5 s
      // here) takes the frames captured meanwhile rather than refusing them.
      maxPendingFrames: Math.max(8, Math.ceil(fps)),
    };
    const encoder = (options.startEncoder ?? ((o) => new H264Encoder(o)))(encoderOptions);
    const running: Running = { encoder, sequence: this.nextSequence++, lastWantedAt: performance.now(), warm: false, failed: false };
    this.running.set(rung, running);
    this.started++;
    return running;
  }

  private async encodeOn(rung: number, running: Running, image: RawImage): Promise<EncodedRung | undefined> {
    const spec = this.ladder[rung]!;
    let unit: EncodedAccessUnit;
    try {
      unit = await running.encoder.encode(image);
    } catch (error) {
      if (error instanceof FfmpegBusyError) {
        this.refused++;
        return undefined;
      }
      this.failed(rung, running, error as Error);
      return undefined;
    }
    running.warm = true;
    return { rung, width: spec.width, height: spec.height, payload: unit.data, chain: { rung, sequence: running.sequence, index: unit.frameNumber, keyframe: unit.keyframe } };
  }

  /** The encoder broke (ffmpeg died): the next frame starts a new one, at a keyframe. */
  private failed(rung: number, running: Running, error: Error): void {
    if (running.failed) return;
    running.failed = true;
    if (this.running.get(rung) === running) this.running.delete(rung);
    if (!this.closed) this.options.log?.(`H.264 encoder of rung ${rung} failed (${error.message}): starting a new one`);
    void running.encoder.close().catch(() => undefined);
  }

  private stopIdle(now: number): void {
    for (const [rung, running] of this.running) {
      if (now - running.lastWantedAt <= this.lingerMs) continue;
      this.running.delete(rung);
      void running.encoder.close().catch(() => undefined);
    }
  }
}
