import type { RawImage } from '@camstream/media';

export type Bgr = readonly [number, number, number];

export const RED: Bgr = [0, 0, 255];
export const BLUE: Bgr = [255, 0, 0];
export const GREEN: Bgr = [0, 255, 0];

/**
 * 320x240: red, with a blue block in the middle and green stripes across the top, colours no
 * desktop background or window decoration has, so a screenshot can be checked by counting.
 */
export function distinctiveImage(width = 320, height = 240): RawImage {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const inBlock = x >= width / 4 && x < (3 * width) / 4 && y >= height / 2 && y < (5 * height) / 6;
      const inStripe = y < height / 3 && Math.floor(y / 10) % 2 === 0;
      const colour = inBlock ? BLUE : inStripe ? GREEN : RED;
      data.set(colour, (y * width + x) * 3);
    }
  }
  return { width, height, channels: 3, data };
}

/** Pixels of `image` within `tolerance` of `colour` in every channel. */
export function countColour(image: RawImage, colour: Bgr, tolerance = 40): number {
  let count = 0;
  const { data, channels } = image;
  for (let offset = 0; offset + 2 < data.length; offset += channels) {
    if (Math.abs(data[offset]! - colour[0]) <= tolerance && Math.abs(data[offset + 1]! - colour[1]) <= tolerance && Math.abs(data[offset + 2]! - colour[2]) <= tolerance) {
      count++;
    }
  }
  return count;
}

/** Mean absolute difference per byte between two images of the same shape. */
export function meanAbsoluteError(a: RawImage, b: RawImage): number {
  if (a.data.length !== b.data.length) throw new Error(`shapes differ: ${a.data.length} vs ${b.data.length} bytes`);
  let sum = 0;
  for (let i = 0; i < a.data.length; i++) sum += Math.abs(a.data[i]! - b.data[i]!);
  return sum / a.data.length;
}

/** The bytes of a rectangle of a 3-channel image, row after row. */
export function cropBytes(image: RawImage, box: { x: number; y: number; width: number; height: number }): Buffer {
  const rows: Buffer[] = [];
  for (let y = box.y; y < box.y + box.height; y++) {
    const start = (y * image.width + box.x) * image.channels;
    rows.push(image.data.subarray(start, start + box.width * image.channels));
  }
  return Buffer.concat(rows);
}
