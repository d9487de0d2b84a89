/**
 * IVF, the simplest container FFmpeg reads H.264 from with our own timestamps: a 32-byte file
 * header, then per frame a 12-byte header (payload length, 64-bit timestamp, both little-endian)
 * and the payload. FFmpeg's IVF demuxer maps the FourCC "H264" to its H.264 decoder and hands
 * each frame over as one packet, so nothing has to find where an access unit ends (a raw H.264
 * input would hold each access unit until the next one begins).
 *
 * File header: "DKIF", version 0 (2 bytes), header size 32 (2), FourCC (4), width (2),
 * height (2), time base denominator (4) and numerator (4), frame count (4), unused (4).
 */
const FILE_HEADER_BYTES = 32;
const FRAME_HEADER_BYTES = 12;

export function ivfFileHeader(options: { width: number; height: number; timeBaseDenominator: number; timeBaseNumerator?: number }): Buffer {
  const header = Buffer.alloc(FILE_HEADER_BYTES);
  header.write('DKIF', 0, 'latin1');
  header.writeUInt16LE(0, 4);
  header.writeUInt16LE(FILE_HEADER_BYTES, 6);
  header.write('H264', 8, 'latin1');
  // Only a hint (the decoder reads the size from the SPS); IVF has 16 bits for it.
  header.writeUInt16LE(Math.min(options.width, 0xffff), 12);
  header.writeUInt16LE(Math.min(options.height, 0xffff), 14);
  header.writeUInt32LE(options.timeBaseDenominator, 16);
  header.writeUInt32LE(options.timeBaseNumerator ?? 1, 20);
  header.writeUInt32LE(0, 24); // frame count: unknown, the stream is live
  return header;
}

export function ivfFrameHeader(payloadBytes: number, timestamp: number): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  header.writeUInt32LE(payloadBytes, 0);
  header.writeBigUInt64LE(BigInt(timestamp), 4);
  return header;
}
