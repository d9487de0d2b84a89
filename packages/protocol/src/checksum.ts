import { crc32 as zlibCrc32 } from 'node:zlib';

/** CRC-32 (IEEE 802.3, the zlib/PNG one) of `buf`, as an unsigned 32-bit integer. */
export function crc32(buf: Uint8Array): number {
  return zlibCrc32(buf);
}
