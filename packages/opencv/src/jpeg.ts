import type { RawImage } from '@camstream/media';
import * as turbo from '@julusian/jpeg-turbo';

export interface JpegFrameHeader {
  width: number;
  height: number;
  /** 1 for grayscale, 3 for colour (YCbCr), 4 for CMYK. */
  components: number;
}

/**
 * Size and component count from a JPEG's frame header (its first SOF marker), or undefined when
 * the bytes do not start like a JPEG or end before one. Reads markers the way libjpeg does
 * (length-prefixed segments, 0xFF fill bytes) but gives up on anything libjpeg would have to
 * tolerate, so it never finds a size that libjpeg would not use.
 */
export function readJpegFrameHeader(data: Buffer): JpegFrameHeader | undefined {
  if (data.length < 4 || data[0] !== 0xff || data[1] !== 0xd8) return undefined;
  let at = 2;
  while (at + 1 < data.length) {
    if (data[at] !== 0xff) return undefined;
    const marker = data[at + 1]!;
    if (marker === 0xff) {
      at += 1;
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      at += 2;
      continue;
    }
    // SOI again, start of scan or end of image before any frame header: not an image we can size.
    if (marker === 0xd8 || marker === 0xda || marker === 0xd9 || at + 4 > data.length) return undefined;
    const length = data.readUInt16BE(at + 2);
    if (length < 2) return undefined;
    if (isStartOfFrame(marker)) {
      if (length < 8 || at + 10 > data.length) return undefined;
      return { height: data.readUInt16BE(at + 5), width: data.readUInt16BE(at + 7), components: data[at + 9]! };
    }
    at += 2 + length;
  }
  return undefined;
}

/** SOF0-SOF15, less DHT (C4), JPG (C8) and DAC (CC), which share the range. */
function isStartOfFrame(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

/**
 * Decodes a JPEG of a known size straight to BGR (or gray) pixels with libjpeg-turbo on the libuv
 * thread pool. Several decodes can run at once. The caller must have checked the size with
 * readJpegFrameHeader: the output buffer (`into`, when it has the right size, else a new one) is
 * sized for it, so a larger image is refused by the binding instead of overrunning it.
 */
export async function decodeJpegTo(payload: Buffer, width: number, height: number, channels: 1 | 3, into?: Buffer): Promise<RawImage> {
  const bytes = width * height * channels;
  const data = into?.length === bytes ? into : Buffer.allocUnsafe(bytes);
  const decoded = await turbo.decompress(payload, data, { format: channels === 1 ? turbo.FORMAT_GRAY : turbo.FORMAT_BGR });
  if (decoded.width !== width || decoded.height !== height || decoded.data.length !== data.length) {
    throw new Error(`libjpeg-turbo decoded ${decoded.width}x${decoded.height}, expected ${width}x${height}`);
  }
  return { width, height, channels, data };
}
