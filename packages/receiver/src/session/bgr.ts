/**
 * Writes an 8-bit image of 1 channel (gray) or 4 channels (BGRA, as OpenCV orders them) as 3
 * channels, BGR, into `into` (width x height x 3 bytes): what the window, the recorder and the
 * browser take. Gray becomes B = G = R; alpha is dropped.
 */
export function toBgr(pixels: Buffer, channels: 1 | 4, width: number, height: number, into: Buffer): Buffer {
  const count = width * height;
  if (pixels.length !== count * channels) throw new RangeError(`a ${width}x${height}x${channels} image has ${count * channels} bytes, got ${pixels.length}`);
  if (into.length !== count * 3) throw new RangeError(`a ${width}x${height} BGR image needs ${count * 3} bytes, the buffer has ${into.length}`);
  if (channels === 1) {
    for (let i = 0, o = 0; i < count; i++, o += 3) {
      const value = pixels[i]!;
      into[o] = value;
      into[o + 1] = value;
      into[o + 2] = value;
    }
  } else {
    for (let i = 0, p = 0, o = 0; i < count; i++, p += 4, o += 3) {
      into[o] = pixels[p]!;
      into[o + 1] = pixels[p + 1]!;
      into[o + 2] = pixels[p + 2]!;
    }
  }
  return into;
}
