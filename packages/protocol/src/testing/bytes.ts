// Byte builders for tests: they assemble messages by hand, independently of the encoder, so that
// tests can build any malformed message the encoder would refuse to make.
import type { DecoderOptions, Message } from '../decoder';
import { MessageDecoder } from '../decoder';

/** Parses hex, ignoring whitespace, so vectors can be laid out field by field. */
export function fromHex(hex: string): Buffer {
  const digits = hex.replace(/\s+/g, '');
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(digits)) throw new Error(`not hex: ${hex}`);
  return Buffer.from(digits, 'hex');
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export interface RawMessageParts {
  /** An object is JSON-encoded; a string is UTF-8 encoded; a Buffer is used as is. */
  header: object | string | Buffer;
  payload?: Buffer;
  /** Overrides the 8-byte length N (default: the real body length). */
  messageLength?: bigint | number;
  /** Overrides the 4-byte header length H (default: the real header length). */
  headerLength?: number;
}

/** Builds one message byte by byte: 8-byte N, 4-byte H, header bytes, payload. */
export function rawMessage(parts: RawMessageParts): Buffer {
  const header = Buffer.isBuffer(parts.header)
    ? parts.header
    : Buffer.from(typeof parts.header === 'string' ? parts.header : JSON.stringify(parts.header), 'utf8');
  const payload = parts.payload ?? Buffer.alloc(0);
  const prefix = Buffer.alloc(12);
  prefix.writeBigUInt64BE(BigInt(parts.messageLength ?? 4 + header.length + payload.length), 0);
  prefix.writeUInt32BE(parts.headerLength ?? header.length, 8);
  return Buffer.concat([prefix, header, payload]);
}

/** Cuts `bytes` at the given offsets into fresh chunks (like socket reads). */
export function splitAt(bytes: Buffer, offsets: readonly number[]): Buffer[] {
  const cuts = [...new Set(offsets)].filter((o) => o > 0 && o < bytes.length).sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const cut of [...cuts, bytes.length]) {
    chunks.push(Buffer.from(bytes.subarray(start, cut)));
    start = cut;
  }
  return chunks.filter((c) => c.length > 0);
}

export function byteByByte(bytes: Buffer): Buffer[] {
  return Array.from(bytes, (b) => Buffer.from([b]));
}

/** Feeds the chunks to one decoder and returns every message, checking nothing is left over. */
export function decodeChunks(chunks: readonly Buffer[], options?: DecoderOptions): Message[] {
  const decoder = new MessageDecoder(options);
  const messages = chunks.flatMap((chunk) => decoder.push(chunk));
  if (decoder.midMessage) throw new Error(`stream ended mid-message with ${decoder.bufferedBytes} bytes held`);
  return messages;
}

/** A message as plain data, for toEqual across decoders (payload as hex). */
export function plain(message: Message): { header: unknown; payload: string } {
  return { header: message.header, payload: toHex(message.payload) };
}
