import { DEFAULT_MAX_HEADER_BYTES, HEADER_LENGTH_BYTES, LENGTH_PREFIX_BYTES } from './constants';
import { frameHeader, type FrameFields } from './encoder';
import { TooLargeError } from './errors';
import type { FrameHeader } from './schema';

/**
 * A frame validated, checksummed and serialized once, for every receiver of its rung: only the
 * `dropped` counter differs between receivers, so the header JSON is kept as the bytes before and
 * after that number, and each receiver's head is those bytes around its own count.
 */
export interface PreparedFrame {
  /** The header with `dropped` 0 (what every receiver gets, but for its own count). */
  readonly header: FrameHeader;
  /** The caller's payload Buffer itself, never copied. */
  readonly payload: Buffer;
  /** The length prefix, header length and JSON header for a receiver with `dropped` declared drops. */
  headFor(dropped: number): Buffer;
  /** Bytes of the whole message (head + payload) with a one-digit drop count; more digits add a byte each. */
  readonly messageBytes: number;
}

const PREFIX_BYTES = LENGTH_PREFIX_BYTES + HEADER_LENGTH_BYTES;
const TWO_POW_32 = 2 ** 32;
const DROPPED_KEY = '"dropped":';

/** Validates the header and computes the CRC once (frameHeader), serializes it once. */
export function prepareFrame(payload: Buffer, fields: Omit<FrameFields, 'dropped'>): PreparedFrame {
  const header = frameHeader(payload, { ...fields, dropped: 0 });
  const json = JSON.stringify(header);
  const at = json.indexOf(DROPPED_KEY) + DROPPED_KEY.length;
  // The value written there is the 0 from above; everything else is shared.
  const before = Buffer.from(json.slice(0, at), 'utf8');
  const after = Buffer.from(json.slice(at + 1), 'utf8');
  const headHeaderBytes = before.length + after.length;
  if (headHeaderBytes + 16 > DEFAULT_MAX_HEADER_BYTES) {
    throw new TooLargeError(`frame header is ${headHeaderBytes} bytes, over the limit of ${DEFAULT_MAX_HEADER_BYTES} bytes a receiver accepts`);
  }
  return {
    header,
    payload,
    messageBytes: PREFIX_BYTES + headHeaderBytes + 1 + payload.length,
    headFor(dropped: number): Buffer {
      if (!Number.isSafeInteger(dropped) || dropped < 0) throw new RangeError(`dropped must be a whole number of frames, got ${dropped}`);
      const digits = String(dropped);
      const headerLength = headHeaderBytes + digits.length;
      const head = Buffer.allocUnsafe(PREFIX_BYTES + headerLength);
      const messageLength = HEADER_LENGTH_BYTES + headerLength + payload.length;
      head.writeUInt32BE(Math.floor(messageLength / TWO_POW_32), 0);
      head.writeUInt32BE(messageLength % TWO_POW_32, 4);
      head.writeUInt32BE(headerLength, LENGTH_PREFIX_BYTES);
      let offset = PREFIX_BYTES + before.copy(head, PREFIX_BYTES);
      offset += head.write(digits, offset, 'latin1');
      after.copy(head, offset);
      return head;
    },
  };
}
