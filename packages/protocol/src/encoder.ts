import { crc32 } from './checksum';
import { DEFAULT_MAX_HEADER_BYTES, HEADER_LENGTH_BYTES, LENGTH_PREFIX_BYTES } from './constants';
import { TooLargeError } from './errors';
import {
  checkPayloadLength,
  type Encoding,
  type FrameHeader,
  frameHeaderSchema,
  type Header,
  parseHeader,
  parseWith,
} from './schema';

/** The bytes of one message in two parts, to be written back to back. */
export interface EncodedMessage {
  /** Length prefix, header length and JSON header. */
  head: Buffer;
  /** The caller's payload Buffer itself, never copied. */
  payload: Buffer;
}

const PREFIX_BYTES = LENGTH_PREFIX_BYTES + HEADER_LENGTH_BYTES;
const TWO_POW_32 = 2 ** 32;

/**
 * Encodes a message. The head and the payload come back separately so that a sender can write
 * both inside cork()/uncork() and send a large frame to many receivers without copying it.
 * Throws ProtocolError if the header is invalid or disagrees with the payload's length.
 * (The frame's crc32 is trusted, not recomputed: `frameHeader` computes it once.)
 */
export function encodeMessage(header: Header, payload: Buffer = Buffer.alloc(0)): EncodedMessage {
  const valid = parseHeader(header);
  checkPayloadLength(valid, payload.length);

  const json = JSON.stringify(valid);
  const headerLength = Buffer.byteLength(json, 'utf8');
  if (headerLength > DEFAULT_MAX_HEADER_BYTES) {
    throw new TooLargeError(
      `${valid.type} header is ${headerLength} bytes, over the limit of ${DEFAULT_MAX_HEADER_BYTES} bytes a receiver accepts`,
    );
  }

  const messageLength = HEADER_LENGTH_BYTES + headerLength + payload.length;
  const head = Buffer.allocUnsafe(PREFIX_BYTES + headerLength);
  // 64-bit length as two 32-bit halves: exact for every length a Buffer can have.
  head.writeUInt32BE(Math.floor(messageLength / TWO_POW_32), 0);
  head.writeUInt32BE(messageLength % TWO_POW_32, 4);
  head.writeUInt32BE(headerLength, LENGTH_PREFIX_BYTES);
  head.write(json, PREFIX_BYTES, 'utf8');
  return { head, payload };
}

export interface FrameFields {
  seq: number;
  captureTime: number;
  width: number;
  height: number;
  channels: 1 | 3 | 4;
  encoding: Encoding;
  /** Cumulative frames the sender skipped for this receiver; 0 when omitted. */
  dropped?: number;
  /** The stream's quality rung the frame is on; 0 (the stream itself) when omitted. */
  rung?: number;
  /** An h264 frame that decoding can start at (section 4.6); written only when true. */
  keyframe?: boolean;
}

/** Builds a validated frame header for `payload`, filling payloadLength and crc32 from it. */
export function frameHeader(payload: Buffer, fields: FrameFields): FrameHeader {
  const header = parseWith(frameHeaderSchema, {
    type: 'frame',
    seq: fields.seq,
    captureTime: fields.captureTime,
    width: fields.width,
    height: fields.height,
    channels: fields.channels,
    encoding: fields.encoding,
    payloadLength: payload.length,
    crc32: crc32(payload),
    dropped: fields.dropped ?? 0,
    // Rung 0 is written as no rung at all: one way to say it.
    ...(fields.rung ? { rung: fields.rung } : {}),
    ...(fields.keyframe ? { keyframe: true } : {}),
  });
  checkPayloadLength(header, payload.length);
  return header;
}
