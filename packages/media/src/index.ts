/**
 * The contracts between the apps (sender, receiver) and whatever captures, encodes or shows
 * images: the OpenCV adapter implements them for real, the testkit with fakes. Types, plus
 * BufferPool (no dependencies), so that depending on this package never loads OpenCV.
 */

export { BufferPool } from './buffer-pool';

/** Wire encodings of one image; the protocol's frame header names one of these. */
export type Encoding = 'raw-bgr' | 'jpeg' | 'png';

/** An 8-bit image, rows top to bottom, pixels interleaved (BGR when channels = 3). */
export interface RawImage {
  readonly width: number;
  readonly height: number;
  readonly channels: number;
  /** Exactly width * height * channels bytes, no row padding. */
  readonly data: Buffer;
}

/** What a source really delivers, which may differ from what was asked for. */
export interface SourceInfo {
  /** Human-readable origin: "camera 0", "file demo.mp4", "test pattern". */
  readonly description: string;
  readonly width: number;
  readonly height: number;
  /** Frames per second the source paces itself at (0 when unknown). */
  readonly fps: number;
  /** True for cameras, URLs and the test pattern; false for files, which end. */
  readonly live: boolean;
}

export interface CapturedFrame {
  readonly image: RawImage;
  /** Wall-clock capture time, milliseconds since the Unix epoch (with fraction). */
  readonly captureTimeMs: number;
}

/**
 * A source of images. read() resolves with the next frame, waiting as long as the source's
 * pacing requires, or null at the end of a finite source.
 */
export interface FrameSource {
  readonly info: SourceInfo;
  read(): Promise<CapturedFrame | null>;
  /** Optional: takes back an image this source delivered, once nothing reads its bytes, to reuse them. */
  recycle?(image: RawImage): void;
  close(): Promise<void>;
}

/** Encodes images to wire payloads and back. Implementations must not block the event loop. */
export interface FrameCodec {
  encode(image: RawImage, encoding: Encoding, options?: { quality?: number }): Promise<Buffer>;
  /**
   * `into`, if given, is a buffer of exactly width * height * channels bytes to decode into
   * instead of a new one (the caller reuses memory), or a function that returns one: it is called
   * only once the payload's own header has been checked, so a payload refused from its header
   * costs the caller no buffer. Encodings that need no pixel buffer (raw-bgr wraps the payload)
   * ignore it, so check whether `data` is `into`.
   */
  decode(payload: Buffer, encoding: Encoding, shape: { width: number; height: number; channels: number }, into?: Buffer | (() => Buffer)): Promise<RawImage>;
  /**
   * Scales an image to width x height (a lower quality rung, or a lower rung back up to the
   * stream's size); `into`, if given, is a buffer of exactly the result's size to write into.
   * Returns `image` itself when it already has that size.
   */
  resize(image: RawImage, width: number, height: number, into?: Buffer): Promise<RawImage>;
}

/** Which frame of the stream an image is, for sinks that show or forward it. */
export interface FrameMeta {
  readonly seq: number;
  /** The sender's capture time, milliseconds since the Unix epoch. */
  readonly captureTime: number;
}

/** Where decoded frames go: a window, a recorder, a browser server. */
export interface FrameSink {
  /**
   * Shows or stores one image; may drop it if the sink is busy, never queues without bound.
   * The sink may read `image.data` until the returned promise settles (or until write returns,
   * if it returns nothing); after that the caller may reuse the memory, unless `keepsImages`.
   */
  write(image: RawImage, meta?: FrameMeta): void | Promise<void>;
  /** True if the sink may read an image's bytes after its write() settled: they are then never reused. */
  readonly keepsImages?: boolean;
  close(): Promise<void>;
}

/** A window that a person looks at; reports when they asked to close it. */
export interface Display extends FrameSink {
  /** Resolves when the person pressed q or Esc, or closed the window. */
  readonly closed: Promise<void>;
}
