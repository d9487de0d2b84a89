import type { Encoding, FrameCodec, RawImage } from '@camstream/media';
import { DecodeError, describeThrown, EncodeError, ShapeMismatchError } from './errors';
import { checkRawImage, imageFromMat, keepAlive, wrapImage } from './images';
import { loadOpenCV } from './load-opencv';

export const DEFAULT_JPEG_QUALITY = 80;

type Shape = { width: number; height: number; channels: number };

/**
 * FrameCodec on OpenCV. JPEG and PNG run on OpenCV's worker threads (imencodeAsync /
 * imdecodeAsync) so they never block the event loop. Copies are kept to the minimum:
 * - encode reads the image's own bytes through a Mat header (no copy in, one Buffer out);
 * - raw-bgr encode returns `image.data` itself and raw-bgr decode wraps the payload;
 * - decode copies the decoded pixels once into the returned Buffer.
 * The caller must not change `image.data` while an encode of it is pending.
 */
export class OpenCVCodec implements FrameCodec {
  async encode(image: RawImage, encoding: Encoding, options: { quality?: number } = {}): Promise<Buffer> {
    checkRawImage(image, `cannot encode ${encoding}`);
    if (encoding === 'raw-bgr') return image.data;
    const cv = loadOpenCV();
    const mat = wrapImage(image);
    try {
      if (encoding === 'jpeg') {
        const quality = options.quality ?? DEFAULT_JPEG_QUALITY;
        if (!Number.isInteger(quality) || quality < 0 || quality > 100) {
          throw new RangeError(`JPEG quality must be a whole number from 0 to 100, got ${quality}`);
        }
        return await cv.imencodeAsync('.jpg', mat, [cv.IMWRITE_JPEG_QUALITY, quality]);
      }
      if (encoding === 'png') return await cv.imencodeAsync('.png', mat);
    } catch (thrown) {
      if (thrown instanceof RangeError) throw thrown;
      throw new EncodeError(`${encoding} encode of a ${image.width}x${image.height}x${image.channels} image failed: ${describeThrown(thrown)}`, { cause: thrown });
    } finally {
      // The Mat points into image.data without owning it: keep the image reachable until OpenCV is done.
      keepAlive(image);
    }
    throw new RangeError(`unknown encoding: ${String(encoding)}`);
  }

  async decode(payload: Buffer, encoding: Encoding, shape: Shape): Promise<RawImage> {
    const expected = `${shape.width}x${shape.height}x${shape.channels}`;
    if (encoding === 'raw-bgr') {
      const bytes = shape.width * shape.height * shape.channels;
      if (payload.length !== bytes) {
        throw new ShapeMismatchError(`raw-bgr payload has ${payload.length} bytes, the announced ${expected} needs ${bytes}`);
      }
      return { width: shape.width, height: shape.height, channels: shape.channels, data: payload };
    }
    if (encoding !== 'jpeg' && encoding !== 'png') throw new RangeError(`unknown encoding: ${String(encoding)}`);
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
      return imageFromMat(mat);
    } finally {
      // Free the decoded pixels now, on this thread, instead of whenever the GC finalises the
      // Mat: the next decode then reuses the same memory (no fresh pages, ~9 us per page fault
      // here), and @u4/opencv4nodejs's external-memory accounting never runs inside a GC, which
      // aborted Node ("Check failed: marking_done_") within a few hundred 720p decodes.
      mat.release();
    }
  }
}
