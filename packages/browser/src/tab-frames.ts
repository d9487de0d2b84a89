/**
 * How frames travel to a browser tab over the WebSocket at /ws (WEBSOCKET.md, the normative
 * description; page/viewer.js is the reading side). Each frame is split into several binary
 * messages of at most FRAGMENT_BYTES; the first starts with a fixed header. Several messages,
 * rather than one, let the page time how the frame arrived (first message to last), which is
 * what the server's flow window sizes itself from.
 */

export const TAB_FRAME_VERSION = 1;
/** Bytes of the header at the start of a frame's first message (version 1; 32 before the codec byte was appended). */
export const TAB_FRAME_HEADER_BYTES = 36;
/** What the payload is: a baseline JPEG, or one H.264 access unit (Annex B). */
export type TabFrameCodec = 'jpeg' | 'h264';
const CODEC_BYTES: Record<TabFrameCodec, number> = { jpeg: 0, h264: 1 };
const KEYFRAME_FLAG = 1;
/** Largest binary message the server sends. */
export const FRAGMENT_BYTES = 16 * 1024;

export interface TabFrameHeader {
  /** The stream's frame number. */
  seq: number;
  /** Wall-clock capture time, ms since the Unix epoch (with fraction). */
  captureTime: number;
  /** Size of this frame's image, which is the rung's size. */
  width: number;
  height: number;
  /** 0: the stream's own quality; higher: a cheaper rung. */
  rung: number;
  /** Frames this connection skipped so far (latest-wins), cumulative since it opened. */
  dropped: number;
  /** Bytes of the payload, spread over this message and the following ones. */
  payloadBytes: number;
  /** The payload's codec (a header of 32 bytes, from before the field existed, is JPEG). */
  codec: TabFrameCodec;
  /** An H.264 access unit that decoding can start at (always false for JPEG). */
  keyframe: boolean;
}

export function encodeTabFrameHeader(header: TabFrameHeader, into: Buffer = Buffer.allocUnsafe(TAB_FRAME_HEADER_BYTES)): Buffer {
  into.writeUInt8(TAB_FRAME_VERSION, 0);
  into.writeUInt8(header.rung, 1);
  into.writeUInt16BE(TAB_FRAME_HEADER_BYTES, 2);
  into.writeUInt32BE(header.payloadBytes, 4);
  into.writeDoubleBE(header.seq, 8);
  into.writeDoubleBE(header.captureTime, 16);
  into.writeUInt32BE(header.dropped, 24);
  into.writeUInt16BE(header.width, 28);
  into.writeUInt16BE(header.height, 30);
  into.writeUInt8(CODEC_BYTES[header.codec], 32);
  into.writeUInt8(header.keyframe ? KEYFRAME_FLAG : 0, 33);
  into.writeUInt16BE(0, 34);
  return into;
}

export class TabFrameFormatError extends Error {
  readonly code = 'ERR_TAB_FRAME';
}

/** Reads the header at the start of a frame's first message (for tests and other clients than the page). */
export function decodeTabFrameHeader(message: Uint8Array): TabFrameHeader {
  if (message.length < 4) throw new TabFrameFormatError(`a frame's first message needs at least 4 bytes, got ${message.length}`);
  const bytes = Buffer.from(message.buffer, message.byteOffset, message.byteLength);
  const version = bytes.readUInt8(0);
  if (version !== TAB_FRAME_VERSION) throw new TabFrameFormatError(`frame header version ${version}, expected ${TAB_FRAME_VERSION}`);
  const headerBytes = bytes.readUInt16BE(2);
  if (headerBytes < 32 || headerBytes > bytes.length) {
    throw new TabFrameFormatError(`frame header of ${headerBytes} bytes in a message of ${bytes.length}`);
  }
  const codecByte = headerBytes >= TAB_FRAME_HEADER_BYTES ? bytes.readUInt8(32) : CODEC_BYTES.jpeg;
  const codec = (Object.keys(CODEC_BYTES) as TabFrameCodec[]).find((name) => CODEC_BYTES[name] === codecByte);
  if (codec === undefined) throw new TabFrameFormatError(`frame codec ${codecByte}, expected 0 (JPEG) or 1 (H.264)`);
  return {
    codec,
    keyframe: headerBytes >= TAB_FRAME_HEADER_BYTES && (bytes.readUInt8(33) & KEYFRAME_FLAG) !== 0,
    rung: bytes.readUInt8(1),
    payloadBytes: bytes.readUInt32BE(4),
    seq: bytes.readDoubleBE(8),
    captureTime: bytes.readDoubleBE(16),
    dropped: bytes.readUInt32BE(24),
    width: bytes.readUInt16BE(28),
    height: bytes.readUInt16BE(30),
  };
}

/** Frames are cut into at least this many messages, so that even a small frame's arrival can be timed... */
export const MIN_MESSAGES_PER_FRAME = 4;
/** ...unless that would make messages smaller than this. */
export const MIN_FRAGMENT_BYTES = 1024;

/**
 * The size of every message of a frame of `frameBytes` (header included) but the last, which may
 * be shorter: a quarter of the frame, but at least 1 KiB and at most 16 KiB.
 */
export function tabFragmentBytes(frameBytes: number): number {
  return Math.min(FRAGMENT_BYTES, Math.max(MIN_FRAGMENT_BYTES, Math.ceil(frameBytes / MIN_MESSAGES_PER_FRAME)));
}

/**
 * The messages of one frame: consecutive slices of header + payload, each tabFragmentBytes long
 * but the last. The first (header and the first payload bytes) is a new buffer; the others are
 * views into the payload (never copied).
 */
export function tabFrameMessages(header: TabFrameHeader, payload: Buffer): Buffer[] {
  const fragment = tabFragmentBytes(tabFrameBytes(payload.length));
  const firstPayload = Math.min(payload.length, fragment - TAB_FRAME_HEADER_BYTES);
  const first = Buffer.allocUnsafe(TAB_FRAME_HEADER_BYTES + firstPayload);
  encodeTabFrameHeader(header, first);
  payload.copy(first, TAB_FRAME_HEADER_BYTES, 0, firstPayload);
  const messages: Buffer[] = [first];
  for (let offset = firstPayload; offset < payload.length; offset += fragment) {
    messages.push(payload.subarray(offset, offset + fragment));
  }
  return messages;
}

/** Bytes a frame of `payloadBytes` takes on the WebSocket, header included (WebSocket framing aside). */
export function tabFrameBytes(payloadBytes: number): number {
  return TAB_FRAME_HEADER_BYTES + payloadBytes;
}

/** What the page sends back for a frame once it has drawn it (a text message of JSON). */
export interface TabAck {
  type: 'ack';
  seq: number;
  /** ms from the first message of the frame to its last, as the page saw them arrive. */
  spanMs: number;
  /** Bytes of the frame's messages after the first one. */
  spanBytes: number;
}

export class TabMessageError extends Error {
  readonly code = 'ERR_TAB_MESSAGE';
}

/** Parses and checks one text message from a tab; throws TabMessageError naming what is wrong. */
export function parseTabAck(text: string): TabAck {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new TabMessageError(`not JSON: ${JSON.stringify(text.slice(0, 40))}`);
  }
  if (typeof value !== 'object' || value === null || (value as { type?: unknown }).type !== 'ack') {
    throw new TabMessageError('expected {"type":"ack",...}');
  }
  const { seq, spanMs, spanBytes } = value as Record<string, unknown>;
  const check = (name: string, n: unknown, integer: boolean): number => {
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n))) {
      throw new TabMessageError(`ack field ${name} must be a ${integer ? 'non-negative integer' : 'finite number >= 0'}, got ${typeof n === 'number' ? String(n) : JSON.stringify(n)}`);
    }
    return n;
  };
  return { type: 'ack', seq: check('seq', seq, true), spanMs: check('spanMs', spanMs, false), spanBytes: check('spanBytes', spanBytes, true) };
}
