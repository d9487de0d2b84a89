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
  const found = findFrameHeader(data);
  return found && { width: found.width, height: found.height, components: found.components };
}

/**
 * Why a JPEG whose frame header was read cannot be the image that header claims, found without
 * decoding it; undefined when nothing is known to be wrong (the decode may still fail):
 * - no end-of-image marker (FF D9) after the frame header: it was cut short (compressed data
 *   never holds those two bytes: a 0xFF there is followed by 0x00 or a restart marker);
 * - fewer bytes than the image needs: a Huffman-coded scan spends at least one bit on the DC
 *   coefficient of every 8x8 block of every component, so a 7680x4320 colour JPEG has at least
 *   97,200 bytes. (Arithmetic coding has no such floor and is not checked.)
 * libjpeg-turbo would otherwise fill the missing pixels with gray and then fail, having written a
 * whole frame's worth of memory for a payload of a few hundred bytes.
 */
export function findJpegDamage(data: Buffer): string | undefined {
  const frame = findFrameHeader(data);
  if (!frame) return 'no JPEG frame header';
  const least = leastHuffmanBytes(frame);
  if (least !== undefined && data.length < least) {
    return `it is too small for a ${frame.width}x${frame.height} image: a Huffman-coded JPEG of that size has at least ${least} bytes (one bit per 8x8 block)`;
  }
  // Searched from the end, where a whole JPEG has it.
  if (data.lastIndexOf(END_OF_IMAGE) < frame.offset) return 'it is truncated (no end-of-image marker after its frame header)';
  return undefined;
}

const END_OF_IMAGE = Buffer.from([0xff, 0xd9]);

interface FrameHeaderAt extends JpegFrameHeader {
  /** Where its marker starts. */
  offset: number;
  marker: number;
  /** Each component's sampling factors, when the segment holds them all. */
  sampling: Array<{ h: number; v: number }> | undefined;
}

function findFrameHeader(data: Buffer): FrameHeaderAt | undefined {
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
      const components = data[at + 9]!;
      let sampling: FrameHeaderAt['sampling'];
      if (length >= 8 + 3 * components && at + 10 + 3 * components <= data.length) {
        sampling = [];
        for (let c = 0; c < components; c++) {
          const factors = data[at + 11 + 3 * c]!;
          sampling.push({ h: factors >> 4, v: factors & 0x0f });
        }
      }
      return { height: data.readUInt16BE(at + 5), width: data.readUInt16BE(at + 7), components, offset: at, marker, sampling };
    }
    at += 2 + length;
  }
  return undefined;
}

/** The fewest bytes a Huffman-coded JPEG with this frame header can have; undefined when there is no such floor or the header is invalid. */
function leastHuffmanBytes({ marker, width, height, sampling }: FrameHeaderAt): number | undefined {
  // SOF9-SOF11 and SOF13-SOF15 are arithmetic-coded.
  if (marker >= 0xc9 || !sampling || sampling.length === 0) return undefined;
  if (sampling.some(({ h, v }) => h < 1 || h > 4 || v < 1 || v > 4)) return undefined;
  const hMax = Math.max(...sampling.map((s) => s.h));
  const vMax = Math.max(...sampling.map((s) => s.v));
  // Blocks per component as libjpeg counts them: its downsampled size, rounded up to whole blocks.
  let blocks = 0;
  for (const { h, v } of sampling) blocks += Math.ceil(Math.ceil((width * h) / hMax) / 8) * Math.ceil(Math.ceil((height * v) / vMax) / 8);
  return Math.ceil(blocks / 8);
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

/** Output buffers of encodes, by size (libjpeg-turbo's worst case for the image): reused, so an encode touches no fresh pages. */
const encodeScratch = new Map<number, Buffer[]>();
/** Spare output buffers kept per size: as many as encodes usually run at once. */
const SPARE_SCRATCH_PER_SIZE = 2;
/** Sizes kept at most (a stream's rungs have a few); the oldest size is let go first. */
const SCRATCH_SIZES = 8;

/**
 * Encodes BGR (or gray, or BGRA) pixels to a baseline JPEG, 4:2:0 (gray: one component), with
 * libjpeg-turbo on the libuv thread pool. It reads BGR itself, with SIMD; OpenCV 4.6's encoder
 * swaps every row to RGB first and costs about 1.4x the time (0.73 vs 0.50 ms at 640x480 q80,
 * 2.1 vs 1.5 ms at 1280x720; the same picture, PSNR within 0.05 dB). The JPEG is written into a
 * reused buffer and returned as a copy of its own size.
 */
export async function encodeJpegFrom(image: RawImage, quality: number): Promise<Buffer> {
  const { width, height, channels } = image;
  const format = channels === 1 ? turbo.FORMAT_GRAY : channels === 4 ? turbo.FORMAT_BGRA : turbo.FORMAT_BGR;
  const options = { width, height, format, subsampling: channels === 1 ? turbo.SAMP_GRAY : turbo.SAMP_420, quality };
  const size = turbo.bufferSize(options);
  const spare = encodeScratch.get(size);
  const scratch = spare?.pop() ?? Buffer.allocUnsafeSlow(size);
  try {
    const jpeg = await turbo.compress(image.data, scratch, options);
    return Buffer.from(jpeg);
  } finally {
    if (spare) {
      if (spare.length < SPARE_SCRATCH_PER_SIZE) spare.push(scratch);
    } else {
      if (encodeScratch.size >= SCRATCH_SIZES) encodeScratch.delete(encodeScratch.keys().next().value!);
      encodeScratch.set(size, [scratch]);
    }
  }
}
