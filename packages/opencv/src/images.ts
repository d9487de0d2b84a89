import type { RawImage } from '@camstream/media';
import type { Mat } from '@u4/opencv4nodejs';
import { loadOpenCV } from './load-opencv';

/** Throws unless `image.data` holds exactly width * height * channels bytes of 1, 3 or 4 channels. */
export function checkRawImage(image: RawImage, what = 'image'): void {
  const { width, height, channels, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`${what}: width and height must be positive integers, got ${width}x${height}`);
  }
  if (channels !== 1 && channels !== 3 && channels !== 4) {
    throw new RangeError(`${what}: channels must be 1, 3 or 4, got ${channels}`);
  }
  const expected = width * height * channels;
  if (data.length !== expected) {
    throw new RangeError(`${what}: ${width}x${height}x${channels} needs ${expected} bytes, data has ${data.length}`);
  }
}

/** The OpenCV type of an 8-bit image with this many channels. */
export function matTypeOf(channels: number): number {
  const cv = loadOpenCV();
  if (channels === 1) return cv.CV_8UC1;
  if (channels === 3) return cv.CV_8UC3;
  if (channels === 4) return cv.CV_8UC4;
  throw new RangeError(`unsupported channel count ${channels}`);
}

/**
 * A Mat header over the image's own bytes: no copy (`new cv.Mat(buffer, rows, cols, type)`
 * copies, 1-15 ms a frame). The Mat does not keep the Buffer alive, so callers must hold on
 * to `image` until OpenCV is done with the Mat (async calls included), and must not change
 * the bytes meanwhile.
 */
export function wrapImage(image: RawImage): Mat {
  const cv = loadOpenCV();
  return new cv.Mat(image.height, image.width, matTypeOf(image.channels), image.data);
}

/**
 * Call after the last await that uses a Mat from wrapImage: using the image there makes the
 * async function keep it across the suspension, so its bytes cannot be collected while an
 * OpenCV worker thread still reads them.
 */
export function keepAlive(_image: RawImage): void {}

/**
 * Copies a Mat's pixels into a tightly packed Buffer: `into` when it has the right size, else a
 * new one. Copying into a wrapped Buffer is one copy; `mat.getData()` is two (into a malloc'd
 * block, then into a JS Buffer) and about twice as slow (720p: 0.4 vs 1.25 ms).
 */
export function imageFromMat(mat: Mat, into?: Buffer): RawImage {
  const cv = loadOpenCV();
  const width = mat.cols;
  const height = mat.rows;
  const channels = mat.channels;
  if (mat.depth !== cv.CV_8U) throw new RangeError(`expected an 8-bit image, got OpenCV depth ${mat.depth}`);
  const bytes = width * height * channels;
  const data = into?.length === bytes ? into : Buffer.allocUnsafe(bytes);
  mat.copyTo(new cv.Mat(height, width, mat.type, data));
  return { width, height, channels, data };
}

/** Scales `mat` to width x height (INTER_AREA when shrinking, INTER_LINEAR when growing), off the event loop. */
export async function resizeMat(mat: Mat, width: number, height: number): Promise<Mat> {
  if (mat.cols === width && mat.rows === height) return mat;
  const cv = loadOpenCV();
  const shrinking = width * height < mat.cols * mat.rows;
  return mat.resizeAsync(new cv.Size(width, height), 0, 0, shrinking ? cv.INTER_AREA : cv.INTER_LINEAR);
}
