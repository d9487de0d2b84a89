import { crc32 as zlibCrc32 } from 'node:zlib';

/**
 * CRC-32 (IEEE 802.3, the zlib/PNG one) of `buf`, as an unsigned 32-bit integer. `previous`, the
 * CRC of the bytes before `buf`, continues a running checksum: crc32(b, crc32(a)) = crc32(a + b).
 */
export function crc32(buf: Uint8Array, previous = 0): number {
  return zlibCrc32(buf, previous);
}
