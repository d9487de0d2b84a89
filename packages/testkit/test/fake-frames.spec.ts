import fc from 'fast-check';
import type { RawImage } from '@camstream/media';
import { imageDifference, readFrameNumber, renderFakeFrame } from '../src';

// A real JPEG round trip needs OpenCV, which the testkit may not load: the opencv package's
// tests check readFrameNumber on encoded/decoded fake frames. (Checked while writing this with
// ImageMagick: quality 10..50 at 64x48 up to 1920x1080 all read back correctly.) Here we
// simulate the damage: noise and blur.

// Global lookups (Math.*) are slow inside jest's sandbox, so the per-byte helpers avoid them.
const imul = Math.imul;

function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };
}

function withNoise(image: RawImage, amplitude: number, seed: number): RawImage {
  const random = seededRandom(seed);
  const data = Buffer.from(image.data);
  for (let i = 0; i < data.length; i++) {
    const noisy = data[i]! + ((random() * 2 - 1) * amplitude) | 0;
    data[i] = noisy < 0 ? 0 : noisy > 255 ? 255 : noisy;
  }
  return { ...image, data };
}

/** 3x3 box blur per channel (separable: rows, then columns), clamped at the borders. */
function blurred(image: RawImage): RawImage {
  const { width, height, channels, data } = image;
  const rowBytes = width * channels;
  const horizontal = new Float32Array(data.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const left = x > 0 ? x - 1 : x;
      const right = x < width - 1 ? x + 1 : x;
      for (let c = 0; c < channels; c++) {
        const row = y * rowBytes + c;
        horizontal[row + x * channels] = (data[row + left * channels]! + data[row + x * channels]! + data[row + right * channels]!) / 3;
      }
    }
  }
  const out = Buffer.alloc(data.length);
  for (let y = 0; y < height; y++) {
    const above = (y > 0 ? y - 1 : y) * rowBytes;
    const below = (y < height - 1 ? y + 1 : y) * rowBytes;
    for (let i = 0; i < rowBytes; i++) {
      out[y * rowBytes + i] = (horizontal[above + i]! + horizontal[y * rowBytes + i]! + horizontal[below + i]!) / 3 + 0.5;
    }
  }
  return { ...image, data: out };
}

const sizes: Array<[number, number]> = [
  [640, 480],
  [64, 48],
  [1280, 720],
  [97, 61],
];
const notableNumbers = [0, 1, 2, 255, 256, 65535, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 2, 2 ** 32 - 1, 123_456_789];

describe('renderFakeFrame / readFrameNumber', () => {
  it.each(sizes)('reads back notable numbers at %ix%i', (width, height) => {
    for (const n of notableNumbers) {
      const image = renderFakeFrame(n, width, height);
      expect(image).toMatchObject({ width, height, channels: 3 });
      expect(image.data.length).toBe(width * height * 3);
      expect(readFrameNumber(image)).toBe(n);
    }
  });

  it('reads back any 32-bit number at 640x480 and 64x48', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), (n) => {
        expect(readFrameNumber(renderFakeFrame(n, 640, 480))).toBe(n);
        expect(readFrameNumber(renderFakeFrame(n, 64, 48))).toBe(n);
      }),
      { numRuns: 200 },
    );
  });

  it.each(sizes)('survives noise of +-20 per byte and a blur at %ix%i', (width, height) => {
    [0, 2 ** 31, 2 ** 32 - 1, 123_456_789].forEach((n, i) => {
      const damaged = withNoise(blurred(renderFakeFrame(n, width, height)), 20, i + 1);
      expect(readFrameNumber(damaged)).toBe(n);
      expect(readFrameNumber(blurred(blurred(withNoise(renderFakeFrame(n, width, height), 20, i + 7))))).toBe(n);
    });
  });

  it('returns null for images that are not fake frames', () => {
    const random = seededRandom(42);
    const noise = Buffer.alloc(640 * 480 * 3);
    for (let i = 0; i < noise.length; i++) noise[i] = random() * 256;
    expect(readFrameNumber({ width: 640, height: 480, channels: 3, data: noise })).toBeNull();
    expect(readFrameNumber({ width: 640, height: 480, channels: 3, data: Buffer.alloc(640 * 480 * 3, 0) })).toBeNull();
    expect(readFrameNumber({ width: 640, height: 480, channels: 3, data: Buffer.alloc(640 * 480 * 3, 255) })).toBeNull();
    // Upside down: the marker row is not where it belongs.
    const frame = renderFakeFrame(77, 64, 48);
    const flipped = Buffer.alloc(frame.data.length);
    const rowBytes = 64 * 3;
    for (let y = 0; y < 48; y++) frame.data.copy(flipped, (47 - y) * rowBytes, y * rowBytes, (y + 1) * rowBytes);
    expect(readFrameNumber({ ...frame, data: flipped })).toBeNull();
    expect(readFrameNumber({ width: 4, height: 4, channels: 3, data: Buffer.alloc(48) })).toBeNull();
  });

  it('returns null rather than a wrong number when one cell is flipped', () => {
    const frame = renderFakeFrame(0x12345678, 640, 480);
    const data = Buffer.from(frame.data);
    // Invert one data cell (row 2, column 3 of the 8x6 grid in the top half).
    const rowBytes = 640 * 3;
    for (let y = 80; y < 120; y++) {
      for (let i = 240 * 3; i < 320 * 3; i++) data[y * rowBytes + i] = 255 - data[y * rowBytes + i]!;
    }
    expect(readFrameNumber({ ...frame, data })).toBeNull();
  });

  it('is deterministic and the content depends on the frame number', () => {
    const a = renderFakeFrame(1000, 320, 240);
    expect(imageDifference(a, renderFakeFrame(1000, 320, 240))).toBe(0);
    // Consecutive frames differ clearly, far beyond JPEG-sized errors (about 1 per byte).
    expect(imageDifference(a, renderFakeFrame(1001, 320, 240))).toBeGreaterThan(10);
    expect(imageDifference(a, withNoise(a, 4, 3))).toBeLessThan(3);
  });

  it('renders with contentIndex: same number band, other content', () => {
    const own = renderFakeFrame(40, 128, 96);
    const other = renderFakeFrame(40, 128, 96, 10);
    expect(readFrameNumber(other)).toBe(40);
    const band = 128 * 48 * 3;
    expect(other.data.subarray(0, band).equals(own.data.subarray(0, band))).toBe(true);
    expect(other.data.subarray(band).equals(renderFakeFrame(10, 128, 96).data.subarray(band))).toBe(true);
  });

  it('rejects bad arguments', () => {
    expect(() => renderFakeFrame(-1, 64, 48)).toThrow(RangeError);
    expect(() => renderFakeFrame(2 ** 32, 64, 48)).toThrow(RangeError);
    expect(() => renderFakeFrame(1.5, 64, 48)).toThrow(RangeError);
    expect(() => renderFakeFrame(1, 4, 4)).toThrow(RangeError);
    expect(() => imageDifference(renderFakeFrame(1, 64, 48), renderFakeFrame(1, 64, 50))).toThrow(RangeError);
  });
});
