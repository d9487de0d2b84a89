import { frameHeader, type Encoding } from '@camstream/protocol';
import type { CapturedFrame, FrameCodec, FrameSink, FrameSource } from '@camstream/media';
import type { EncodedFrame } from './encoded-frame';

export interface PumpOptions {
  source: FrameSource;
  codec: FrameCodec;
  encoding: Encoding;
  quality?: number;
  /** Receives every encoded frame once (the stream server fans it out). */
  publish: (frame: EncodedFrame) => void;
  /** Optional local preview of what is captured. */
  preview?: FrameSink;
  /** When it returns false nobody is watching: frames are captured (the source stays live) but not encoded. */
  hasAudience?: () => boolean;
  /** Called after each published frame with the encode time, for stats. */
  onEncoded?: (encodeMs: number, frame: EncodedFrame) => void;
  signal?: AbortSignal;
}

export type PumpResult = 'source-ended' | 'stopped';

/**
 * Capture -> encode once -> publish. The next capture runs while the current frame is being
 * encoded on the thread pool, so a paced source and the encoder overlap instead of adding up.
 */
export async function pumpFrames(options: PumpOptions): Promise<PumpResult> {
  const { source, signal } = options;
  let seq = 0;
  let frame = await source.read();
  while (frame) {
    if (signal?.aborted) return 'stopped';
    if (options.hasAudience && !options.hasAudience()) {
      void options.preview?.write(frame.image);
      frame = await source.read();
      continue;
    }
    const started = performance.now();
    const encoded = encodeFrame(options, frame, seq++);
    const next = source.read();
    // Whichever fails first must not leave the other's rejection unhandled.
    next.catch(() => undefined);
    const result = await encoded;
    options.onEncoded?.(performance.now() - started, result);
    if (signal?.aborted) return 'stopped';
    options.publish(result);
    void options.preview?.write(frame.image);
    frame = await next;
  }
  return signal?.aborted ? 'stopped' : 'source-ended';
}

async function encodeFrame(options: PumpOptions, frame: CapturedFrame, seq: number): Promise<EncodedFrame> {
  const { image } = frame;
  const quality = options.quality === undefined ? {} : { quality: options.quality };
  const payload = await options.codec.encode(image, options.encoding, quality);
  const { dropped: _perViewer, ...header } = frameHeader(payload, {
    seq,
    captureTime: frame.captureTimeMs,
    width: image.width,
    height: image.height,
    channels: image.channels as 1 | 3 | 4,
    encoding: options.encoding,
  });
  return { header, payload };
}
