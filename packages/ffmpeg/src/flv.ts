/**
 * Reads the FLV stream that the encoder's ffmpeg writes on stdout and hands over each H.264
 * access unit the moment its last byte arrives.
 *
 * Why FLV and not raw Annex B: in a raw H.264 byte stream an access unit ends only where the
 * next one begins, so the reader would hold every frame until the encoder has produced the next
 * one (a frame interval of latency, 33 ms at 30 fps). FLV puts each packet in a tag whose length
 * comes first, and ffmpeg's FLV muxer writes (and, with -flush_packets 1, flushes) a tag as soon
 * as the encoder returns the packet. Its H.264 payload is AVCC (each NAL unit behind a 4-byte
 * big-endian length); turning that into Annex B only overwrites each length with the start code
 * 00 00 00 01, in place.
 *
 * Layout (FLV 10.1 specification): a 9-byte file header and a 4-byte PreviousTagSize of 0; then
 * tags: type (1 byte: 8 audio, 9 video, 18 script), data size (3 bytes), timestamp (3 + 1 bytes),
 * stream id (3 bytes), data, and a 4-byte PreviousTagSize. A video tag's data starts with
 * frame type and codec (1 byte: codec 7 is AVC), AVCPacketType (1 byte: 0 sequence header,
 * 1 NAL units, 2 end of sequence) and a 3-byte composition time.
 */
import { AnnexBError } from './errors';

const FILE_HEADER_BYTES = 9 + 4;
const TAG_HEADER_BYTES = 11;
const PREVIOUS_TAG_SIZE_BYTES = 4;
const TAG_VIDEO = 9;
const CODEC_AVC = 7;
const AVC_NAL_UNITS = 1;
const AVC_HEADER_BYTES = 5;
const START_CODE = 0x00000001;

export interface FlvVideoPacket {
  /** The packet as Annex B: 4-byte start codes, NAL units as the encoder wrote them. */
  readonly annexB: Buffer;
  /** The tag's frame type says keyframe. */
  readonly keyframe: boolean;
}

/**
 * Incremental FLV reader: push() stdout chunks in, get whole H.264 packets out. Bytes are kept
 * as a list of chunks; a tag's data is copied once when it spans chunks, else used in place.
 * A tag larger than `maxTagBytes` fails the reader (checked from its header, before buffering).
 */
export class FlvAvcReader {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private headerRead = false;

  constructor(private readonly maxTagBytes: number) {}

  /** Takes a chunk; returns the packets it completed (often one). Throws AnnexBError on malformed data. */
  push(chunk: Buffer): FlvVideoPacket[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const packets: FlvVideoPacket[] = [];
    for (;;) {
      if (!this.headerRead) {
        if (this.buffered < FILE_HEADER_BYTES) return packets;
        const header = this.take(FILE_HEADER_BYTES);
        if (header.toString('latin1', 0, 3) !== 'FLV') throw new AnnexBError(`encoder output is not FLV (starts with ${header.subarray(0, 3).toString('hex')})`);
        this.headerRead = true;
      }
      if (this.buffered < TAG_HEADER_BYTES) return packets;
      const tagHeader = this.peek(TAG_HEADER_BYTES);
      const dataBytes = tagHeader.readUIntBE(1, 3);
      if (dataBytes > this.maxTagBytes) throw new AnnexBError(`encoder output has an FLV tag of ${dataBytes} bytes, over the limit of ${this.maxTagBytes}`);
      if (this.buffered < TAG_HEADER_BYTES + dataBytes + PREVIOUS_TAG_SIZE_BYTES) return packets;
      this.take(TAG_HEADER_BYTES);
      const data = this.take(dataBytes);
      this.take(PREVIOUS_TAG_SIZE_BYTES);
      if (tagHeader[0] === TAG_VIDEO && dataBytes >= AVC_HEADER_BYTES && (data[0]! & 0x0f) === CODEC_AVC && data[1] === AVC_NAL_UNITS) {
        packets.push({ annexB: avccToAnnexB(data.subarray(AVC_HEADER_BYTES)), keyframe: data[0]! >> 4 === 1 });
      }
    }
  }

  /** The first `count` buffered bytes, without consuming them (copied only when they span chunks). */
  private peek(count: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= count) return first.subarray(0, count);
    return Buffer.concat(this.chunks, Math.min(this.buffered, count)).subarray(0, count);
  }

  /**
   * Consumes `count` bytes: a view when they lie in one chunk (the chunks are ours: Node hands
   * each read its own Buffer), else one copy.
   */
  private take(count: number): Buffer {
    const first = this.chunks[0];
    if (first && first.length >= count) {
      this.consume(count);
      return first.subarray(0, count);
    }
    const out = Buffer.allocUnsafe(count);
    let filled = 0;
    while (filled < count) {
      const chunk = this.chunks[0]!;
      const part = Math.min(chunk.length, count - filled);
      chunk.copy(out, filled, 0, part);
      filled += part;
      this.consume(part);
    }
    return out;
  }

  private consume(count: number): void {
    const first = this.chunks[0]!;
    if (count === first.length) this.chunks.shift();
    else this.chunks[0] = first.subarray(count);
    this.buffered -= count;
  }
}

/**
 * Rewrites 4-byte-length-prefixed NAL units as Annex B in place and returns the same bytes.
 * Throws AnnexBError when the lengths do not add up to the packet.
 */
export function avccToAnnexB(packet: Buffer): Buffer {
  let at = 0;
  while (at < packet.length) {
    if (at + 4 > packet.length) throw new AnnexBError(`AVC packet ends inside a NAL unit length at byte ${at}`);
    const length = packet.readUInt32BE(at);
    if (length === 0 || at + 4 + length > packet.length) {
      throw new AnnexBError(`AVC packet has a NAL unit of ${length} bytes at byte ${at}, which does not fit its ${packet.length} bytes`);
    }
    packet.writeUInt32BE(START_CODE, at);
    at += 4 + length;
  }
  return packet;
}
