import { FanOut, rungLadder, RungEncoder, type Delivery, type Outlet, type RungSource, type RungSpec } from '@camstream/fanout';
import type { FrameCodec, RawImage } from '@camstream/media';
import { prepareFrame, type StreamDescription } from '@camstream/protocol';
import { H264Rungs, type H264RungsOptions } from './h264-rungs';
import { OutgoingFrame } from './outgoing-frame';
import { SharedImage } from './shared-image';

/** The JPEG quality used when the stream does not name one (the OpenCV adapter's default too). */
const DEFAULT_JPEG_QUALITY = 80;

export interface BroadcastOptions {
  /** Encodes each rung in use (the OpenCV codec in the app). */
  codec: FrameCodec;
  /** The stream as captured (size, fps, encoding, quality, source); its rungs are added here. */
  stream: StreamDescription;
  /** An h264 stream's encoders: rate control and keyframes (`stream.bitrate` is rung 0's bitrate). */
  h264?: Pick<H264RungsOptions, 'crf' | 'keyframeIntervalSeconds' | 'vbvBufferMs' | 'lingerMs' | 'startEncoder' | 'log'>;
  now?: () => number;
}

/** An h264 stream's rung-0 bitrate when none is given: 0.145 bits per pixel per frame (4 Mbit/s at 1280x720, 30 fps). */
export function defaultH264Bitrate(width: number, height: number, fps: number): number {
  return Math.max(100_000, Math.round((width * height * (fps > 0 ? fps : 30) * 0.145) / 1000) * 1000);
}

/** What one publish() did. */
export interface BroadcastResult {
  /** The frame of each rung that was encoded, by rung. */
  readonly frames: ReadonlyMap<number, OutgoingFrame>;
  /** Time spent encoding every rung in use. */
  readonly encodeMs: number;
  /** Settles once some viewer wrote the frame, or none holds it any more. */
  readonly taken: Promise<void>;
  /** Settles once every viewer wrote (to the kernel) or dropped every rung of the frame. */
  readonly released: Promise<void>;
  /**
   * Settles once nothing reads the captured image any more: the outlets that send it as it is
   * (image outlets, and a raw stream's rung 0, whose payload is the image) wrote or dropped it,
   * and no H.264 encoder reads it (one that is starting up may, after publish() resolved).
   * Only then may the source reuse its buffer.
   */
  readonly imageReleased: Promise<void>;
}

/**
 * An outlet that sends the captured image as it is, in a framing of its own (the tutorial's
 * pickles): nothing is encoded or prepared for it, and the pixels are never copied. It holds the
 * image (SharedImage.retain) until its socket took the bytes, and settles the delivery as an
 * Outlet does: true once it hands the image to its socket, false if it never will.
 */
export interface ImageOutlet {
  offer(delivery: Delivery<SharedImage>): void;
}

/**
 * One stream as the sender announces it and encodes it: the quality ladder (PROTOCOL.md 4.4: JPEG
 * quality and size rungs, H.264 bitrate rungs; raw and PNG streams can only drop frames), and the
 * fan-out that encodes each rung in use once per captured frame and hands it to every viewer on
 * that rung. Viewers join and leave through add() and delete() (the stream server does that); the
 * capture loop publishes. H.264 (PROTOCOL.md 4.6): an encoder per rung in use (H264Rungs), and the
 * fan-out's rules for frames that depend on the ones before them (keyframes for joiners and switches).
 */
export class Broadcast {
  /** The stream description every receiver gets in the sender's hello, with its rungs. */
  readonly stream: StreamDescription;
  /** Rung 0 (the stream itself) and the lower rungs, best first. */
  readonly ladder: readonly RungSpec[];
  /** Its frames depend on the ones before them (H.264): viewers change rungs at keyframes, and carefully. */
  readonly interCoded: boolean;
  private readonly fanOut: FanOut<OutgoingFrame>;
  private readonly source: RungSource;
  private readonly h264: H264Rungs | undefined;
  /** Called once when the next viewer joins. */
  private readonly joinListeners = new Set<() => void>();
  /** The frames prepared by each publish() under way, so that its own hold on them can be let go. */
  private readonly preparing = new Map<number, OutgoingFrame[]>();
  private readonly imageOutlets = new Set<ImageOutlet>();
  private joins = 0;

  constructor(options: BroadcastOptions) {
    const { encoding, width, height, fps } = options.stream;
    const quality = encoding === 'jpeg' ? (options.stream.quality ?? DEFAULT_JPEG_QUALITY) : undefined;
    const bitrate = encoding === 'h264' ? (options.stream.bitrate ?? defaultH264Bitrate(width, height, fps)) : undefined;
    if (encoding === 'h264') {
      this.h264 = new H264Rungs({ width, height, fps, bitrate: bitrate!, ...options.h264 });
      this.source = this.h264;
      this.ladder = this.h264.ladder;
    } else {
      this.ladder = rungLadder(encoding, width, height, quality);
      this.source = new RungEncoder(options.codec, encoding, this.ladder);
    }
    // A quality only means something for JPEG, a bitrate for H.264; the rungs are this ladder's.
    const { rungs: _given, quality: _asked, bitrate: _bitrate, ...stream } = options.stream;
    this.stream = {
      ...stream,
      ...(quality === undefined ? {} : { quality }),
      ...(bitrate === undefined ? {} : { bitrate }),
      ...(this.ladder.length > 1 ? { rungs: this.ladder.slice(1).map((r) => ({ ...r })) } : {}),
    };
    const interCoded = this.source.interCoded === true;
    this.interCoded = interCoded;
    this.fanOut = new FanOut<OutgoingFrame>({
      encoder: this.source,
      fps,
      prepare: (encoded, published) => {
        const frame = new OutgoingFrame(
          prepareFrame(encoded.payload, {
            seq: published.seq,
            captureTime: published.captureTime,
            width: encoded.width,
            height: encoded.height,
            channels: published.image.channels as 1 | 3 | 4,
            encoding,
            rung: encoded.rung,
            keyframe: encoded.chain?.keyframe === true,
          }),
          encoded.rung,
          // Inter-coded frames may be prepared after publish() returned: the fan-out holds them instead.
          interCoded ? 0 : 1,
        );
        if (!interCoded) this.preparing.get(published.seq)?.push(frame);
        return frame;
      },
      ...(interCoded ? { hold: (frame: OutgoingFrame) => frame.retain(), letGo: (frame: OutgoingFrame) => frame.release() } : {}),
      ...(options.now ? { now: options.now } : {}),
    });
  }

  /** The H.264 encoders, for an h264 stream (figures, tests). */
  get h264Rungs(): H264Rungs | undefined {
    return this.h264;
  }

  /** Viewers getting frames: camstream receivers and image outlets. */
  get size(): number {
    return this.fanOut.size + this.imageOutlets.size;
  }

  add(outlet: Outlet<OutgoingFrame>): void {
    this.fanOut.add(outlet);
    this.joined();
  }

  delete(outlet: Outlet<OutgoingFrame>): void {
    this.fanOut.delete(outlet);
  }

  /** An outlet that gets every captured image as it is (rung 0, never encoded). */
  addImageOutlet(outlet: ImageOutlet): void {
    this.imageOutlets.add(outlet);
    this.joined();
  }

  deleteImageOutlet(outlet: ImageOutlet): void {
    this.imageOutlets.delete(outlet);
  }

  /** Viewers that joined so far (a count that only grows): who joined since a moment. */
  get joinCount(): number {
    return this.joins;
  }

  /** Resolves when the next viewer joins (at once if `orNow` and someone watches already). */
  nextViewer(orNow = false): Promise<void> {
    if (orNow && this.size > 0) return Promise.resolve();
    return new Promise((resolve) => this.joinListeners.add(resolve));
  }

  /** Calls `listener` once, when the next viewer joins; the function returned cancels that. */
  whenViewerJoins(listener: () => void): () => void {
    const once = () => listener();
    this.joinListeners.add(once);
    return () => void this.joinListeners.delete(once);
  }

  /** Expected bytes per second of a rung (for figures). */
  rungBitrate(rung: number): number {
    return this.fanOut.rungBitrate(rung);
  }

  /**
   * Encodes `image` once for each rung some viewer is on and offers it to those viewers. Resolves
   * once every rung was encoded and offered; the viewers write it as their windows allow.
   * `offerAfter` (must not reject): offer only once it settles, encoding meanwhile.
   */
  async publish(image: RawImage, seq: number, captureTime: number, offerAfter?: Promise<void>): Promise<BroadcastResult> {
    const frames: OutgoingFrame[] = [];
    this.preparing.set(seq, frames);
    // Image outlets get the captured image first (once `offerAfter` settled): they wait for no encoder.
    const shared = this.imageOutlets.size > 0 ? new SharedImage(image, seq, captureTime) : undefined;
    let imageTaken = shared && !offerAfter ? this.offerImage(shared) : undefined;
    const imageOffered = shared && offerAfter ? offerAfter.then(() => void (imageTaken = this.offerImage(shared))) : undefined;
    try {
      const encodedFor = this.fanOut.size;
      const published = await this.fanOut.publish({ image, seq, captureTime, ...(offerAfter ? { offerAfter } : {}) });
      await imageOffered;
      // The fan-out's `taken` settles at once when it had no viewer: then only the image outlets say.
      const taken = !imageTaken ? published.taken : encodedFor === 0 ? imageTaken : Promise.race([published.taken, imageTaken]);
      const released = Promise.all(frames.map((f) => f.released)).then(() => undefined);
      const holdingImage = [published.imageReleased, ...(this.stream.encoding === 'raw-bgr' ? [released] : []), ...(shared ? [shared.released] : [])];
      return {
        frames: published.frames,
        encodeMs: published.encodeMs,
        taken,
        released: shared ? Promise.all([released, shared.released]).then(() => undefined) : released,
        imageReleased: Promise.all(holdingImage).then(() => undefined),
      };
    } finally {
      // The image outlets must have it before the publisher lets go of it.
      await imageOffered;
      this.preparing.delete(seq);
      // The publisher's own hold: from here on only the viewers hold the frames.
      for (const frame of frames) frame.release();
      shared?.release();
    }
  }

  /** Stops the stream's encoders (H.264) and lets go of the frames kept for joiners. */
  async close(): Promise<void> {
    await this.fanOut.delivered();
    this.fanOut.clearKept();
    await this.h264?.close();
  }

  private joined(): void {
    this.joins++;
    const listeners = [...this.joinListeners];
    this.joinListeners.clear();
    for (const listener of listeners) listener();
  }

  /** Offers `shared` to every image outlet; resolves once one took it or all let it go. */
  private offerImage(shared: SharedImage): Promise<void> {
    let holders = this.imageOutlets.size;
    let resolve!: () => void;
    const taken = new Promise<void>((r) => (resolve = r));
    for (const outlet of this.imageOutlets) {
      let settled = false;
      outlet.offer({
        frame: shared,
        settle: (wasTaken) => {
          if (settled) return;
          settled = true;
          holders--;
          if (wasTaken || holders === 0) resolve();
        },
      });
    }
    return taken;
  }
}
