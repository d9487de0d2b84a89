import type { FrameCodec, RawImage } from '@camstream/media';
import type { FrameHeader } from '@camstream/protocol';
import type { ReceiverStats } from '../stats';
import type { SinkSet } from '../sinks/sink-set';
import type { AnySizeBufferPool } from './any-size-buffer-pool';
import { DecodePipeline } from './decode-pipeline';

/** A frame the session checked (and acknowledged), on its way to the sinks. */
export interface CheckedFrame {
  header: FrameHeader;
  payload: Buffer;
  /** The payload is a buffer of the payload pool that nothing else keeps: give it back once read. */
  pooled: boolean;
  /** Its quality rung: rung r > 0 is decoded at the rung's size and scaled to the stream's. */
  rung: number;
  /**
   * Frames before it are missing (NATS: lost in transport, skipped by the subscriber): an H.264
   * frame that is no keyframe then lacks its reference, and decoding waits for the next keyframe.
   */
  afterGap?: boolean;
}

/** A decoded image and the pool its bytes go back to once every sink is done with it. */
interface DecodedImage {
  image: RawImage;
  home: 'pixels' | 'payloads' | undefined;
}

export interface FramePipelineOptions {
  codec: FrameCodec;
  /** Frames decoded at once when they arrive faster than one decode takes. */
  concurrency: number;
  /** Where pooled payloads go back. */
  payloads: AnySizeBufferPool;
  /** Where decoded and scaled pixels come from and go back. */
  pixels: AnySizeBufferPool;
  sinks: SinkSet;
  stats: ReceiverStats;
  log: (line: string) => void;
  /** The error the run was stopped with, if any: a sink that reports it is not logged again. */
  stoppedWith: () => Error | undefined;
}

/**
 * Checked frames -> decode -> scale lower rungs to the stream's size -> every sink. Decoding is
 * latest-wins on several decoders and hands frames on in order (DecodePipeline); a slow sink
 * makes newer frames replace the one waiting to be shown. Every buffer goes back to its pool
 * once nothing reads it: a JPEG payload when its decode is done, a raw payload (which is the
 * image) and decoded pixels when every sink is done, unless a sink keeps images.
 */
export class FramePipeline {
  private readonly stages: DecodePipeline<CheckedFrame, DecodedImage>;
  private stream: { width: number; height: number } | undefined;

  constructor(private readonly options: FramePipelineOptions) {
    const { stats, log, sinks } = options;
    this.stages = new DecodePipeline<CheckedFrame, DecodedImage>(
      {
        decode: (frame) => this.decode(frame),
        accepted: ({ header }) => stats.frameDecoded(wallClockMs() - header.captureTime),
        skipped: () => stats.skipped++,
        discarded: (frame) => this.giveBackPayload(frame),
        show: async ({ image }, { header }) => {
          // Wait for a recorder that is still opening: meanwhile newer frames are skipped and
          // counted, never decoded into no sink at all.
          await sinks.ready();
          await sinks.write(image, { seq: header.seq, captureTime: header.captureTime });
          stats.frameShown();
        },
        release: (decoded) => this.release(decoded),
        onError: (error, stage) => {
          if (stage === 'decode') {
            stats.corrupt++;
            log(`could not decode a frame: ${(error as Error).message}`);
          } else if (error !== options.stoppedWith()) {
            log(`could not show or record a frame: ${(error as Error).message}`);
          }
        },
      },
      options.concurrency,
    );
  }

  /** The stream's size, which every frame reaches the sinks at. Call before its first frame. */
  setStream(stream: { width: number; height: number }): void {
    this.stream = { width: stream.width, height: stream.height };
  }

  offer(frame: CheckedFrame): void {
    this.stages.offer(frame);
  }

  /** Resolves when nothing decodes, shows or waits. */
  idle(): Promise<void> {
    return this.stages.idle();
  }

  private async decode(frame: CheckedFrame): Promise<DecodedImage> {
    const { codec, pixels } = this.options;
    const { header, payload } = frame;
    // A buffer is taken only once the codec has checked the payload's own header, and one that a
    // failed decode wrote into is not given back: the pool keeps memory for frames that decode,
    // never for a stream whose frames all fail (e.g. small JPEGs claiming 8K). Nor is the payload.
    const { encoding } = header;
    if (encoding === 'h264') throw new Error(`frame ${header.seq} is H.264: it goes through the H.264 pipeline, one decoder in order`);
    let into: Buffer | undefined;
    const image = await codec.decode(payload, encoding, header, () => (into = pixels.take(header.width * header.height * header.channels)));
    if (into && image.data !== into) pixels.give(into); // raw frames wrap their payload
    const decoded: DecodedImage = { image, home: image.data === into ? 'pixels' : image.data === payload && frame.pooled ? 'payloads' : undefined };
    if (decoded.home !== 'payloads') this.giveBackPayload(frame); // read, and not the image
    const stream = this.stream!;
    if (frame.rung === 0 || (image.width === stream.width && image.height === stream.height)) return decoded;
    // A lower rung: the sinks (a window, a recording) see one size, the stream's.
    const target = pixels.take(stream.width * stream.height * image.channels);
    let scaled: RawImage;
    try {
      scaled = await codec.resize(image, stream.width, stream.height, target);
    } finally {
      this.release(decoded, true);
    }
    if (scaled.data !== target) pixels.give(target);
    return { image: scaled, home: scaled.data === target ? 'pixels' : undefined };
  }

  /** Gives an image's bytes back once nothing reads them: `unshown`, no sink ever had it. */
  private release({ image, home }: DecodedImage, unshown = false): void {
    if (home === undefined || (!unshown && this.options.sinks.keepsImages)) return;
    (home === 'pixels' ? this.options.pixels : this.options.payloads).give(image.data);
  }

  private giveBackPayload(frame: CheckedFrame): void {
    if (frame.pooled) this.options.payloads.give(frame.payload);
  }
}

function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}
