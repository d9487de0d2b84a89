import type { RawImage } from '@camstream/media';

/*
 * Fake frame layout. The top half is a "number band": a grid of 8 x 6 flat black or white
 * cells. Cells this large (8 px wide even at 64x48, one JPEG block) keep their mean through
 * JPEG quality 50+ and mild blurring, so the number is read back by thresholding each cell's
 * mean rather than exact pixels.
 *   row 0     marker 10110010: tells a fake frame from any other image and gives the
 *             black and white reference levels for the threshold
 *   rows 1-4  the frame number, 32 bits, most significant first
 *   row 5     CRC-8 of those 4 bytes, so a misread cell yields null instead of a wrong number
 * The bottom half is smooth colour gradients whose phase depends on the frame number, so a
 * test can check that the right picture arrived (imageDifference against renderFakeFrame),
 * not just the right count.
 */

const CODE_COLUMNS = 8;
const CODE_ROWS = 6;
const MARKER_BITS = [1, 0, 1, 1, 0, 0, 1, 0] as const;
const MAX_FRAME_NUMBER = 0xffff_ffff;
/** Smallest image the layout fits in (one pixel per cell); reliable from 64x48 up. */
const MIN_WIDTH = CODE_COLUMNS;
const MIN_HEIGHT = CODE_ROWS * 2;

function bandHeightOf(height: number): number {
  return Math.floor(height / 2);
}

function cellLeft(column: number, width: number): number {
  return Math.floor((column * width) / CODE_COLUMNS);
}

function cellTop(row: number, bandHeight: number): number {
  return Math.floor((row * bandHeight) / CODE_ROWS);
}

function crc8(value: number): number {
  let crc = 0;
  for (let shift = 24; shift >= 0; shift -= 8) {
    crc ^= (value >>> shift) & 0xff;
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 0x80 ? ((crc << 1) ^ 0x07) & 0xff : (crc << 1) & 0xff;
    }
  }
  return crc;
}

/** The 48 cell values, row by row: marker, 32 number bits, 8 check bits. */
function codeBits(frameNumber: number): number[] {
  const bits: number[] = [...MARKER_BITS];
  for (let bit = 31; bit >= 0; bit--) bits.push((frameNumber >>> bit) & 1);
  const check = crc8(frameNumber);
  for (let bit = 7; bit >= 0; bit--) bits.push((check >>> bit) & 1);
  return bits;
}

function checkFrameNumber(frameNumber: number): void {
  if (!Number.isInteger(frameNumber) || frameNumber < 0 || frameNumber > MAX_FRAME_NUMBER) {
    throw new RangeError(`frame number must be an integer in 0..2^32-1, got ${frameNumber}`);
  }
}

function checkSize(width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < MIN_WIDTH || height < MIN_HEIGHT) {
    throw new RangeError(`fake frames need at least ${MIN_WIDTH}x${MIN_HEIGHT} pixels, got ${width}x${height}`);
  }
}

/** Writes the number band (top half) of frame `frameNumber` into a BGR buffer. */
export function writeNumberBand(data: Buffer, frameNumber: number, width: number, height: number): void {
  checkFrameNumber(frameNumber);
  const bits = codeBits(frameNumber);
  const bandHeight = bandHeightOf(height);
  const rowBytes = width * 3;
  for (let row = 0; row < CODE_ROWS; row++) {
    const top = cellTop(row, bandHeight);
    const bottom = cellTop(row + 1, bandHeight);
    if (bottom <= top) continue;
    // Paint the first pixel row of this cell row, then copy it down: a few native fills and copies.
    const firstRow = top * rowBytes;
    for (let column = 0; column < CODE_COLUMNS; column++) {
      const value = bits[row * CODE_COLUMNS + column] ? 255 : 0;
      data.fill(value, firstRow + cellLeft(column, width) * 3, firstRow + cellLeft(column + 1, width) * 3);
    }
    for (let y = top + 1; y < bottom; y++) data.copy(data, y * rowBytes, firstRow, firstRow + rowBytes);
  }
}

/** Triangle wave over 0..509 -> 0..255..1, so gradients wrap without a hard edge. */
const TRIANGLE = new Uint8Array(1024);
for (let i = 0; i < TRIANGLE.length; i++) {
  const phase = i % 510;
  TRIANGLE[i] = phase <= 255 ? phase : 510 - phase;
}

/** Writes the content area (bottom half): gradients whose phase shifts with `contentIndex`. */
function writeContent(data: Buffer, contentIndex: number, width: number, height: number): void {
  const bandHeight = bandHeightOf(height);
  const contentHeight = height - bandHeight;
  // Per-frame phases: consecutive frames differ by roughly 40 levels per byte on average.
  const bluePhase = (contentIndex * 23) % 510;
  const greenPhase = (contentIndex * 41) % 510;
  const redPhase = (contentIndex * 67) % 510;
  const blueRow = new Uint8Array(width);
  const redOffsetX = new Uint16Array(width);
  for (let x = 0; x < width; x++) {
    blueRow[x] = TRIANGLE[bluePhase + Math.floor((x * 256) / width)]!;
    redOffsetX[x] = Math.floor((x * 128) / width);
  }
  let offset = bandHeight * width * 3;
  for (let y = 0; y < contentHeight; y++) {
    const green = TRIANGLE[greenPhase + Math.floor((y * 256) / contentHeight)]!;
    const redBase = redPhase + Math.floor((y * 128) / contentHeight);
    for (let x = 0; x < width; x++) {
      data[offset++] = blueRow[x]!;
      data[offset++] = green;
      data[offset++] = TRIANGLE[redBase + redOffsetX[x]!]!;
    }
  }
}

/**
 * Renders fake frame `frameNumber` (0..2^32-1) as a fresh BGR image: the number band on top,
 * gradients below. `contentIndex` picks the gradients (default: the frame number itself);
 * PregeneratedSource uses frameNumber mod its cycle length.
 */
export function renderFakeFrame(frameNumber: number, width: number, height: number, contentIndex = frameNumber): RawImage {
  checkFrameNumber(frameNumber);
  checkSize(width, height);
  const data = Buffer.allocUnsafe(width * height * 3);
  writeNumberBand(data, frameNumber, width, height);
  writeContent(data, contentIndex, width, height);
  return { width, height, channels: 3, data };
}

/** Mean brightness over the middle half of one cell, sampling at most ~16x16 pixels. */
function cellMean(image: RawImage, row: number, column: number, bandHeight: number): number {
  const { width, channels, data } = image;
  const left = cellLeft(column, width);
  const right = cellLeft(column + 1, width);
  const top = cellTop(row, bandHeight);
  const bottom = cellTop(row + 1, bandHeight);
  // Edges are where JPEG ringing and blur live; the middle keeps the cell's true level.
  const insetX = Math.floor((right - left) / 4);
  const insetY = Math.floor((bottom - top) / 4);
  const x0 = left + insetX;
  const x1 = Math.max(x0 + 1, right - insetX);
  const y0 = top + insetY;
  const y1 = Math.max(y0 + 1, bottom - insetY);
  const stepX = Math.max(1, Math.floor((x1 - x0) / 16));
  const stepY = Math.max(1, Math.floor((y1 - y0) / 16));
  const colourChannels = Math.min(channels, 3);
  let sum = 0;
  let count = 0;
  for (let y = y0; y < y1; y += stepY) {
    for (let x = x0; x < x1; x += stepX) {
      const offset = (y * width + x) * channels;
      for (let c = 0; c < colourChannels; c++) sum += data[offset + c]!;
      count += colourChannels;
    }
  }
  return count ? sum / count : 0;
}

/**
 * Reads the frame number from a fake frame, also after JPEG compression (quality 50+), noise
 * or slight blur. Returns null when the image is not a fake frame (marker missing, cells not
 * clearly black or white, check bits wrong).
 */
export function readFrameNumber(image: RawImage): number | null {
  const { width, height, channels, data } = image;
  if (width < MIN_WIDTH || height < MIN_HEIGHT || channels < 1 || data.length < width * height * channels) return null;
  const bandHeight = bandHeightOf(height);
  const means: number[] = [];
  for (let row = 0; row < CODE_ROWS; row++) {
    for (let column = 0; column < CODE_COLUMNS; column++) means.push(cellMean(image, row, column, bandHeight));
  }
  let blackSum = 0;
  let whiteSum = 0;
  MARKER_BITS.forEach((bit, column) => {
    if (bit) whiteSum += means[column]!;
    else blackSum += means[column]!;
  });
  const black = blackSum / MARKER_BITS.filter((bit) => !bit).length;
  const white = whiteSum / MARKER_BITS.filter((bit) => bit).length;
  const contrast = white - black;
  if (contrast < 100) return null;
  const threshold = (black + white) / 2;
  const bits: number[] = [];
  for (const mean of means) {
    // A cell near the threshold means this is not a fake frame (or it is damaged beyond trust).
    if (Math.abs(mean - threshold) < contrast / 4) return null;
    bits.push(mean > threshold ? 1 : 0);
  }
  if (MARKER_BITS.some((bit, column) => bits[column] !== bit)) return null;
  let frameNumber = 0;
  for (let i = 0; i < 32; i++) frameNumber = frameNumber * 2 + bits[CODE_COLUMNS + i]!;
  let check = 0;
  for (let i = 0; i < 8; i++) check = check * 2 + bits[CODE_COLUMNS + 32 + i]!;
  return check === crc8(frameNumber) ? frameNumber : null;
}

/** Mean absolute difference per byte (0..255) between two images of the same shape. */
export function imageDifference(a: RawImage, b: RawImage): number {
  if (a.width !== b.width || a.height !== b.height || a.channels !== b.channels) {
    throw new RangeError(`image shapes differ: ${a.width}x${a.height}x${a.channels} vs ${b.width}x${b.height}x${b.channels}`);
  }
  const length = a.width * a.height * a.channels;
  if (length === 0) return 0;
  const left = a.data;
  const right = b.data;
  let sum = 0;
  for (let i = 0; i < length; i++) {
    const difference = left[i]! - right[i]!;
    sum += difference < 0 ? -difference : difference;
  }
  return sum / length;
}
