import { DecodeError, H264Decoder, type DecodedFrame, type PreparedH264Decoder } from '@camstream/ffmpeg';
import type { RawImage } from '@camstream/media';
import type { CheckedFrame, FramePipelineOptions } from './frame-pipeline';

/** What the pipeline needs of a decoder (H264Decoder); tests may count or break them. */
export interface AccessUnitDecoder {
  decode(accessUnit: Buffer, into?: Buffer | (() => Buffer)): Promise<DecodedFrame>;
  close(): Promise<void>;
}

/** As for JPEG, raw and PNG frames; its codec only scales pictures of a lower rung of another size to the stream's size. */
export interface H264PipelineOptions extends Omit<FramePipelineOptions, 'concurrency'> {
  /**
   * Access units waiting for the decoder, at most (default 90: 3 s at 30 fps). A decoder that
   * falls that far behind (too little CPU) has its queue skipped up to the next keyframe.
   */
  maxQueued?: number;
  /** Starts a decoder for pictures of one size (default: an H264Decoder, ffmpeg). */
  startDecoder?: (width: number, height: number) => AccessUnitDecoder;
  /**
   * An ffmpeg process started ahead, for the default decoder's first stream: a joiner's first
   * picture then does not wait for ffmpeg to start. Ended when the stream is not H.264, or at close().
   */
  preparedDecoder?: PreparedH264Decoder;
}

/** Access units in the decoder at once: a pipeline, in order (ffmpeg's decoder holds none back). */
const IN_DECODER = 8;
const DEFAULT_MAX_QUEUED = 90;

interface Shown {
  readonly frame: CheckedFrame;
  readonly image: RawImage;
  /** The image's bytes are a buffer of the pixel pool. */
  readonly pooled: boolean;
}

/**
 * Checked h264 frames -> one decoder per stream -> latest-wins -> every sink (PROTOCOL.md 4.6).
 * Unlike JPEG, an access unit cannot be skipped: the pictures after it refer to it. So every
 * access unit goes to the one decoder, in order (up to 8 inside it at once), and latest-wins
 * applies only after decoding: while a sink is busy, a newer picture replaces the one waiting to
 * be shown. Decoding starts at a keyframe (the frames before one are skipped: a stream over NATS
 * may be joined anywhere; over TCP the sender starts each receiver at one). A picture of a lower
 * rung of another size is scaled to the stream's size, and a rung of another size gets a decoder
 * of its own (a sender moves a receiver to another rung only at a keyframe). An access unit the
 * decoder cannot decode is counted as corrupt; the decoder recovers at the next keyframe. If the
 * decoder falls further behind than `maxQueued` access units, what waits is skipped up to the next
 * keyframe, so memory and latency stay bounded.
 */
export class H264FramePipeline {
  private stream: { width: number; height: number } | undefined;
  private decoder: { width: number; height: number; decoder: AccessUnitDecoder } | undefined;
  private readonly queue: CheckedFrame[] = [];
  private inDecoder = 0;
  /** The next access unit the decoder gets must be a keyframe. */
  private needsKeyframe = true;
  private showing = false;
  private waitingToShow: Shown | undefined;
  private idleWaiters: Array<() => void> = [];
  private readonly maxQueued: number;

  constructor(private readonly options: H264PipelineOptions) {
    this.maxQueued = options.maxQueued ?? DEFAULT_MAX_QUEUED;
  }

  /** A new connection's stream (call before its first frame): decoding starts again at a keyframe. */
  setStream(stream: { width: number; height: number }): void {
    this.stream = { width: stream.width, height: stream.height };
    this.needsKeyframe = true;
  }

  offer(frame: CheckedFrame): void {
    const keyframe = frame.header.keyframe === true;
    if (frame.afterGap && !keyframe) this.needsKeyframe = true;
    if (this.needsKeyframe && !keyframe) return this.skip(frame);
    if (this.queue.length >= this.maxQueued) {
      this.options.log(`the H.264 decoder fell ${this.queue.length} frames behind: skipping to the next keyframe`);
      for (const waiting of this.queue.splice(0)) this.skip(waiting);
      if (!keyframe) {
        this.needsKeyframe = true;
        return this.skip(frame);
      }
    }
    this.needsKeyframe = false;
    this.queue.push(frame);
    this.feed();
  }

  /** Resolves when nothing waits, decodes or shows. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** The stream is not H.264: a decoder process started ahead is not needed. */
  dropPreparedDecoder(): void {
    void this.options.preparedDecoder?.close();
  }

  /** Stops the decoder once everything given to it is done. */
  async close(): Promise<void> {
    await this.options.preparedDecoder?.close();
    await this.idle();
    const decoder = this.decoder;
    this.decoder = undefined;
    await decoder?.decoder.close();
  }

  private feed(): void {
    while (this.queue.length > 0 && this.inDecoder < IN_DECODER) this.decode(this.queue.shift()!);
    this.settleIfIdle();
  }

  private decode(frame: CheckedFrame): void {
    const { header } = frame;
    const { pixels, stats, log } = this.options;
    const decoder = this.decoderFor(header.width, header.height);
    this.inDecoder++;
    let into: Buffer | undefined;
    decoder
      .decode(frame.payload, () => (into = pixels.take(header.width * header.height * 3)))
      .then(
        (decoded) => {
          stats.frameDecoded(wallClockMs() - header.captureTime);
          if (decoded.damaged) {
            stats.corrupt++;
            log(`frame ${header.seq} decoded with damage (concealed): ${decoded.decoderMessages.join(' | ') || 'no details'}`);
          }
          this.decoded({ frame, image: decoded.image, pooled: decoded.image.data === into });
        },
        (error: Error) => {
          // A buffer a failed decode may have written into is not given back (see FramePipeline).
          stats.corrupt++;
          log(`could not decode frame ${header.seq}: ${error.message}`);
          if (!(error instanceof DecodeError)) {
            // The decoder refused it before decoding, or is gone: start again at a keyframe.
            this.needsKeyframe = true;
            if (this.decoder?.decoder === decoder) {
              this.decoder = undefined;
              void decoder.close().catch(() => undefined);
            }
          }
        },
      )
      .finally(() => {
        this.inDecoder--;
        if (frame.pooled) this.options.payloads.give(frame.payload);
        this.feed();
      });
  }

  /** The decoder for pictures of this size; a new one when the size changes (always at a keyframe). */
  private decoderFor(width: number, height: number): AccessUnitDecoder {
    const current = this.decoder;
    if (current && current.width === width && current.height === height) return current.decoder;
    // The old one finishes what it has, then ends.
    if (current) void current.decoder.close().catch(() => undefined);
    const { startDecoder, preparedDecoder } = this.options;
    const decoder = startDecoder
      ? startDecoder(width, height)
      : new H264Decoder({ width, height, maxPendingAccessUnits: IN_DECODER, ...(preparedDecoder ? { prepared: preparedDecoder } : {}) });
    this.decoder = { width, height, decoder };
    return decoder;
  }

  /** Latest-wins between the decoder and the sinks. */
  private decoded(shown: Shown): void {
    if (!this.showing) {
      void this.showFrom(shown);
      return;
    }
    if (this.waitingToShow) {
      this.options.stats.skipped++;
      this.release(this.waitingToShow);
    }
    this.waitingToShow = shown;
  }

  private async showFrom(first: Shown): Promise<void> {
    const { sinks, stats, log, stoppedWith } = this.options;
    this.showing = true;
    let next: Shown | undefined = first;
    while (next !== undefined) {
      const { frame } = next;
      let scaled: Shown | undefined;
      try {
        scaled = await this.toStreamSize(next);
        // Wait for a recorder that is still opening (see FramePipeline).
        await sinks.ready();
        await sinks.write(scaled.image, { seq: frame.header.seq, captureTime: frame.header.captureTime });
        stats.frameShown();
      } catch (error) {
        if (error !== stoppedWith()) log(`could not show or record a frame: ${(error as Error).message}`);
      }
      if (scaled && scaled !== next) this.release(scaled);
      this.release(next);
      next = this.waitingToShow;
      this.waitingToShow = undefined;
    }
    this.showing = false;
    this.settleIfIdle();
  }

  /** A lower rung's picture of another size, scaled to the stream's (sinks see one size). */
  private async toStreamSize(shown: Shown): Promise<Shown> {
    const stream = this.stream!;
    const { image } = shown;
    if (image.width === stream.width && image.height === stream.height) return shown;
    const target = this.options.pixels.take(stream.width * stream.height * image.channels);
    const scaled = await this.options.codec.resize(image, stream.width, stream.height, target);
    if (scaled.data !== target) this.options.pixels.give(target);
    return { frame: shown.frame, image: scaled, pooled: scaled.data === target };
  }

  private release(shown: Shown): void {
    if (shown.pooled && !this.options.sinks.keepsImages) this.options.pixels.give(shown.image.data);
  }

  private skip(frame: CheckedFrame): void {
    this.options.stats.skipped++;
    if (frame.pooled) this.options.payloads.give(frame.payload);
  }

  private isIdle(): boolean {
    return this.queue.length === 0 && this.inDecoder === 0 && !this.showing && this.waitingToShow === undefined;
  }

  private settleIfIdle(): void {
    if (!this.isIdle()) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}

function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}
