import type { Encoding, FrameCodec, RawImage } from '@camstream/media';
import { DecodeError, describeThrown, EncodeError, ShapeMismatchError } from './errors';
import { checkRawImage, imageFromMat, keepAlive, resizeMat, wrapImage } from './images';
import { decodeJpegTo, encodeJpegFrom, findJpegDamage, readJpegFrameHeader } from './jpeg';
import { loadOpenCV } from './load-opencv';

export const DEFAULT_JPEG_QUALITY = 80;

type Shape = { width: number; height: number; channels: number };

/**
 * FrameCodec on OpenCV, except JPEG, which goes to libjpeg-turbo directly: OpenCV 4.6 (Debian 12)
 * decodes to RGB and swaps every pixel to BGR in a scalar loop, 3x slower (720p q80: 6.3 vs
 * 2.0 ms), and swaps every row to RGB before encoding, 1.4x slower (see encodeJpegFrom).
 * Everything runs on worker threads so it never blocks the event loop, and decodes can run in
 * parallel. Copies are kept to the minimum:
 * - encode reads the image's own bytes (through a Mat header for PNG; no copy in, one Buffer out);
 * - raw-bgr encode returns `image.data` itself and raw-bgr decode wraps the payload;
 * - JPEG decodes straight into the returned Buffer, PNG decode copies the pixels into it once;
 * - `into` as a function is called only after the payload's own header was checked (JPEG) or
 *   the image decoded (PNG), so a payload refused early takes no buffer from the caller.
 * The caller must not change `image.data` while an encode of it is pending.
 */
export class OpenCVCodec implements FrameCodec {
  async encode(image: RawImage, encoding: Encoding, options: { quality?: number } = {}): Promise<Buffer> {
    checkRawImage(image, `cannot encode ${encoding}`);
    if (encoding === 'raw-bgr') return image.data;
    try {
      if (encoding === 'jpeg') {
        const quality = options.quality ?? DEFAULT_JPEG_QUALITY;
        if (!Number.isInteger(quality) || quality < 0 || quality > 100) {
          throw new RangeError(`JPEG quality must be a whole number from 0 to 100, got ${quality}`);
        }
        return await encodeJpegFrom(image, quality);
      }
      if (encoding === 'png') return await loadOpenCV().imencodeAsync('.png', wrapImage(image));
    } catch (thrown) {
      if (thrown instanceof RangeError) throw thrown;
      throw new EncodeError(`${encoding} encode of a ${image.width}x${image.height}x${image.channels} image failed: ${describeThrown(thrown)}`, { cause: thrown });
    } finally {
      // A Mat or the encoder reads image.data without owning it: keep the image reachable until it is done.
      keepAlive(image);
    }
    throw new RangeError(`unknown encoding: ${String(encoding)}`);
  }

  async resize(image: RawImage, width: number, height: number, into?: Buffer): Promise<RawImage> {
    checkRawImage(image, `cannot resize to ${width}x${height}`);
    if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
      throw new RangeError(`resize target must be positive whole numbers, got ${width}x${height}`);
    }
    if (image.width === width && image.height === height) return image;
    const resized = await resizeMat(wrapImage(image), width, height);
    try {
      return imageFromMat(resized, into);
    } finally {
      resized.release();
      keepAlive(image);
    }
  }

  async decode(payload: Buffer, encoding: Encoding, shape: Shape, into?: Buffer | (() => Buffer)): Promise<RawImage> {
    const expected = `${shape.width}x${shape.height}x${shape.channels}`;
    if (encoding === 'raw-bgr') {
      const bytes = shape.width * shape.height * shape.channels;
      if (payload.length !== bytes) {
        throw new ShapeMismatchError(`raw-bgr payload has ${payload.length} bytes, the announced ${expected} needs ${bytes}`);
      }
      return { width: shape.width, height: shape.height, channels: shape.channels, data: payload };
    }
    if (encoding === 'jpeg') return decodeJpeg(payload, shape, into);
    if (encoding !== 'png') throw new RangeError(`unknown encoding: ${String(encoding)}`);
    const cv = loadOpenCV();
    const flags = shape.channels === 1 ? cv.IMREAD_GRAYSCALE : shape.channels === 3 ? cv.IMREAD_COLOR : cv.IMREAD_UNCHANGED;
    let mat;
    try {
      mat = await cv.imdecodeAsync(payload, flags);
    } catch (thrown) {
      throw new DecodeError(`${encoding} payload of ${payload.length} bytes is not a decodable image: ${describeThrown(thrown)}`, { cause: thrown });
    }
    try {
      if (mat.empty) throw new DecodeError(`${encoding} payload of ${payload.length} bytes is not a decodable image`);
      const decoded = `${mat.cols}x${mat.rows}x${mat.channels}`;
      if (decoded !== expected) {
        throw new ShapeMismatchError(`decoded ${encoding} image is ${decoded}, but the frame announced ${expected}`);
      }
      return imageFromMat(mat, typeof into === 'function' ? into() : into);
    } finally {
      // Free the decoded pixels now, on this thread, instead of whenever the GC finalises the
      // Mat: the next decode then reuses the same memory (no fresh pages, ~9 us per page fault
      // here), and @u4/opencv4nodejs's external-memory accounting never runs inside a GC, which
      // aborted Node ("Check failed: marking_done_") within a few hundred 720p decodes.
      mat.release();
    }
  }
}

/**
 * The frame header is read first, so an image of another size is refused before any pixel is
 * decoded (and before `into` is asked for), and so is one that cannot hold the image it claims
 * (findJpegDamage): libjpeg-turbo would fill the missing rows with gray and then fail.
 */
async function decodeJpeg(payload: Buffer, shape: Shape, into: Buffer | (() => Buffer) | undefined): Promise<RawImage> {
  const { width, height, channels } = shape;
  const notDecodable = `jpeg payload of ${payload.length} bytes is not a decodable image`;
  const header = readJpegFrameHeader(payload);
  if (!header) throw new DecodeError(`${notDecodable}: no JPEG frame header`);
  if (header.width !== width || header.height !== height || (channels !== 1 && channels !== 3)) {
    throw new ShapeMismatchError(`decoded jpeg image is ${header.width}x${header.height}x${header.components === 1 ? 1 : 3}, but the frame announced ${width}x${height}x${channels}`);
  }
  const damage = findJpegDamage(payload);
  if (damage) throw new DecodeError(`${notDecodable}: ${damage}`);
  try {
    return await decodeJpegTo(payload, width, height, channels, typeof into === 'function' ? into() : into);
  } catch (thrown) {
    throw new DecodeError(`${notDecodable}: ${describeJpegFailure(thrown)}`, { cause: thrown });
  }
}

/**
 * @julusian/jpeg-turbo reads the library's global error text after a failed decode, but
 * libjpeg-turbo keeps the reason with the decoder instance, so the text is "No error": the decode
 * stopped on corrupt data (a warning, such as data that ends before the image does) or an error.
 */
function describeJpegFailure(thrown: unknown): string {
  // The binding's errors may come from another realm (jest's sandbox): read `message`, not instanceof.
  const message = (thrown as { message?: unknown } | undefined)?.message;
  const text = typeof message === 'string' ? message : describeThrown(thrown);
  return text === 'No error' || text === '' ? 'its image data is corrupt or ends early (libjpeg-turbo gave no reason)' : text;
}
