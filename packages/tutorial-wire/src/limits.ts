/** Largest image accepted, in pixels: `--max-size WxH`. */
export interface MaxSize {
  width: number;
  height: number;
}

/** 8K UHD, as camstream's own receiver (DEFAULT_MAX_STREAM_SIZE in protocol). */
export const DEFAULT_MAX_SIZE: Readonly<MaxSize> = { width: 7680, height: 4320 };

/** The tutorial's `struct.pack("Q", len(a))`: 8 bytes, little-endian on x86 and ARM. */
export const LENGTH_PREFIX_BYTES = 8;

/** Most channels an accepted array has (BGRA). */
export const MAX_CHANNELS = 4;

/**
 * Room for everything in a numpy array pickle besides its pixel bytes. Python writes about 140 to 215
 * bytes of it (protocol 5 to 2); the rest is margin for wide dimensions and numpy 2's longer names.
 */
export const PICKLE_OVERHEAD_BYTES = 512;

/** Validated limits derived from a MaxSize; every length a peer sends is checked against one of these. */
export interface Limits {
  readonly maxWidth: number;
  readonly maxHeight: number;
  /** Pixel bytes of the largest accepted array: width x height x 4 channels. */
  readonly maxPixelBytes: number;
  /** Protocol 2 carries pixels as latin-1 text in UTF-8: up to 2 bytes per pixel byte. */
  readonly maxTextBytes: number;
  /** Largest pickle: the text form of the largest array plus the overhead. */
  readonly maxPickleLength: number;
}

export function limitsFor(maxSize: MaxSize = DEFAULT_MAX_SIZE): Limits {
  const { width, height } = maxSize;
  for (const [name, value] of [['width', width], ['height', height]] as const) {
    if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`maxSize.${name} must be a positive integer, got ${value}`);
  }
  const maxPixelBytes = width * height * MAX_CHANNELS;
  if (!Number.isSafeInteger(maxPixelBytes * 2 + PICKLE_OVERHEAD_BYTES)) {
    throw new RangeError(`maxSize ${width}x${height} is too large to compute byte limits for`);
  }
  return {
    maxWidth: width,
    maxHeight: height,
    maxPixelBytes,
    maxTextBytes: 2 * maxPixelBytes,
    maxPickleLength: 2 * maxPixelBytes + PICKLE_OVERHEAD_BYTES,
  };
}

/**
 * Longest pickle (the N after the 8-byte length) a stream may announce for `maxSize`: an
 * (H, W, 4) uint8 array in the bulkiest accepted form (protocol 2) plus the pickle's overhead.
 */
export function maxPickleLength(maxSize: MaxSize = DEFAULT_MAX_SIZE): number {
  return limitsFor(maxSize).maxPickleLength;
}
