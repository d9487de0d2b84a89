import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { frameHeader, type Encoding } from '@camstream/protocol';
import type { CapturedFrame, FrameCodec, FrameSink, FrameSource } from '@camstream/media';
import type { EncodedFrame } from './encoded-frame';
import { frameTaken } from './viewer';

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
  /**
   * Resolves when someone is watching again. A source without a pace of its own is not read
   * while nobody watches (unless there is a preview): it would be read flat out, for nobody.
   */
  untilAudience?: () => Promise<void>;
  /** Called after each published frame with the encode time, for stats. */
  onEncoded?: (encodeMs: number, frame: EncodedFrame) => void;
  signal?: AbortSignal;
}

export type PumpResult = 'source-ended' | 'stopped';

/**
 * Capture -> encode once -> publish. The next capture runs while the current frame is being
 * encoded on the thread pool, so a paced source and the encoder overlap instead of adding up.
 *
 * A source without a pace of its own (fps 0: as fast as it can be read) goes as fast as the
 * fastest viewer takes frames: a frame is published once the previous one has been written to
 * some viewer (frameTaken), so the pump never captures, checksums and encodes frames only for
 * every viewer to drop them. Paced sources (cameras) are read and published on time, always.
 *
 * Once a frame is encoded (and previewed), its pixels go back to the source (`recycle`) for a
 * later capture, except raw frames, whose payload is the captured image itself.
 *
 * The loop yields to the event loop once per frame, whatever the source: a source with no pace
 * of its own and a raw "encode" both resolve at once, and a loop of promises that resolve at once
 * never lets signals, new connections, socket writes or timers run.
 */
export async function pumpFrames(options: PumpOptions): Promise<PumpResult> {
  const { source, signal } = options;
  const paceToViewers = source.info.fps === 0;
  let seq = 0;
  let previous: EncodedFrame | undefined;
  /** Gives a frame's pixels back to the source once the preview (if any) is done with them. */
  const recycleAfter = (previewed: void | Promise<void> | undefined, { image }: CapturedFrame) => {
    if (!source.recycle) return;
    const recycle = () => source.recycle!(image);
    if (previewed) void previewed.then(recycle, recycle);
    else recycle();
  };
  let frame = await source.read();
  while (frame) {
    await yieldToEventLoop();
    if (signal?.aborted) return 'stopped';
    if (options.hasAudience && !options.hasAudience()) {
      recycleAfter(options.preview?.write(frame.image), frame);
      if (paceToViewers && !options.preview && options.untilAudience) await untilDone(options.untilAudience(), signal);
      if (signal?.aborted) return 'stopped';
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
    // Unpaced: publish only once the previous frame went out, so it is never replaced unsent.
    if (paceToViewers && previous) await untilDone(frameTaken(previous), signal);
    if (signal?.aborted) return 'stopped';
    options.publish(result);
    previous = result;
    // A raw frame's payload is the captured image itself, still queued on viewers' sockets.
    if (options.encoding === 'raw-bgr') void options.preview?.write(frame.image);
    else recycleAfter(options.preview?.write(frame.image), frame);
    frame = await next;
  }
  return signal?.aborted ? 'stopped' : 'source-ended';
}

/** `done`, or the abort, whichever comes first. */
function untilDone(done: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return done;
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const onAbort = () => resolve();
    signal.addEventListener('abort', onAbort, { once: true });
    void done.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
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
