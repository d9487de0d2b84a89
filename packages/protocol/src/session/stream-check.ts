import type { FrameHeader, StreamDescription } from '../schema';
import { SessionError } from './session-error';

/** A rung as a receiver sees it: the size and quality of the frames that carry its number. */
export interface Rung {
  width: number;
  height: number;
  quality?: number;
  /** An h264 rung's bitrate in bits per second. */
  bitrate?: number;
}

/** Rung 0 (the stream itself) and the stream's lower rungs, in rung order (section 4.4). */
export function streamRungs(stream: StreamDescription): Rung[] {
  const top: Rung = { width: stream.width, height: stream.height, ...(stream.quality === undefined ? {} : { quality: stream.quality }), ...(stream.bitrate === undefined ? {} : { bitrate: stream.bitrate }) };
  return [top, ...(stream.rungs ?? [])];
}

/**
 * A frame must be what the sender announced (one of its rungs, its encoding, 3 channels): returns
 * the frame's rung, or throws SessionError ERR_STREAM_MISMATCH naming both. Shared by every
 * transport's receiver (TCP's ReceiverSession, NATS's subscriber).
 */
export function checkFrameAgainstStream(header: FrameHeader, stream: StreamDescription, rungs: readonly Rung[] = streamRungs(stream)): number {
  const rung = header.rung ?? 0;
  const expected = rungs[rung];
  if (expected === undefined) {
    throw new SessionError('ERR_STREAM_MISMATCH', `frame ${header.seq} is on rung ${rung}, but the stream announced ${rungs.length - 1} lower rung(s)`);
  }
  const channels = 3; // bgr24, the only pixel format: every frame decodes to 3 channels
  if (header.width !== expected.width || header.height !== expected.height || header.encoding !== stream.encoding || header.channels !== channels) {
    const where = rung === 0 ? 'the stream was announced as' : `rung ${rung} was announced as`;
    throw new SessionError(
      'ERR_STREAM_MISMATCH',
      `frame ${header.seq} is ${header.width}x${header.height}x${header.channels} ${header.encoding}, but ${where} ${expected.width}x${expected.height}x${channels} ${stream.encoding}`,
    );
  }
  return rung;
}

/**
 * A receiver of an h264 stream decodes from a keyframe on (section 4.6): over a connection, the
 * first frame, and the first frame on another rung than the frame before it, must be keyframes.
 * Throws SessionError ERR_STREAM_MISMATCH otherwise. `previousRung`: the rung of the frame before
 * on this connection, undefined for the first.
 */
export function checkDecodableStart(header: FrameHeader, rung: number, previousRung: number | undefined): void {
  if (header.keyframe) return;
  if (previousRung === undefined) {
    throw new SessionError('ERR_STREAM_MISMATCH', `frame ${header.seq} is the first of an h264 stream on this connection but no keyframe: decoding can only start at a keyframe`);
  }
  if (rung !== previousRung) {
    throw new SessionError('ERR_STREAM_MISMATCH', `frame ${header.seq} moves from rung ${previousRung} to rung ${rung} but is no keyframe: a rung can only be joined at a keyframe`);
  }
}
