import type { RawImage } from '@camstream/media';
import { OpenCVCodec } from '../src/codec';
import { DecodeError, ShapeMismatchError } from '../src/errors';
import { readJpegFrameHeader } from '../src/jpeg';
import { loadOpenCV } from '../src/load-opencv';
import { TestPatternSource } from '../src/test-pattern';
import { meanAbsoluteError } from './support/images';

describe('JPEG decoding with libjpeg-turbo', () => {
  const codec = new OpenCVCodec();
  const shape = { width: 320, height: 240, channels: 3 };
  let image: RawImage;
  let jpeg: Buffer;

  beforeAll(async () => {
    const pattern = new TestPatternSource(320, 240, 0);
    image = (await pattern.read())!.image;
    await pattern.close();
    jpeg = await codec.encode(image, 'jpeg');
  });

  it('reads the size from the frame header, past APP segments and fill bytes', () => {
    expect(readJpegFrameHeader(jpeg)).toEqual({ width: 320, height: 240, components: 3 });
    const app1 = Buffer.from([0xff, 0xe1, 0x00, 0x06, 1, 2, 3, 4]);
    const padded = Buffer.concat([jpeg.subarray(0, 2), Buffer.from([0xff, 0xff]), app1, jpeg.subarray(2)]);
    expect(readJpegFrameHeader(padded)).toEqual({ width: 320, height: 240, components: 3 });
  });

  it('finds no size in bytes that are not a JPEG or end before the frame header', () => {
    expect(readJpegFrameHeader(Buffer.from('not a jpeg'))).toBeUndefined();
    expect(readJpegFrameHeader(Buffer.alloc(0))).toBeUndefined();
    expect(readJpegFrameHeader(Buffer.from([0xff, 0xd8, 0xff, 0xda, 0x00, 0x08]))).toBeUndefined();
    const sof = sofOffset(jpeg);
    expect(readJpegFrameHeader(jpeg.subarray(0, sof + 6))).toBeUndefined();
    const broken = Buffer.from(jpeg);
    broken[2] = 0x00; // the first marker after SOI, which must start with 0xFF
    expect(readJpegFrameHeader(broken)).toBeUndefined();
  });

  it('decodes to the same pixels as OpenCV, within the IDCT rounding', async () => {
    const ours = await codec.decode(jpeg, 'jpeg', shape);
    const cv = loadOpenCV();
    const theirs = cv.imdecode(jpeg, cv.IMREAD_COLOR);
    const reference = { width: 320, height: 240, channels: 3, data: Buffer.from(theirs.getData()) };
    theirs.release();
    expect(ours).toMatchObject(shape);
    expect(meanAbsoluteError(ours, reference)).toBeLessThan(1);
    expect(meanAbsoluteError(ours, image)).toBeLessThan(4);
  });

  it('decodes to one channel when the frame announces gray', async () => {
    const gray = await codec.decode(jpeg, 'jpeg', { ...shape, channels: 1 });
    expect(gray).toMatchObject({ width: 320, height: 240, channels: 1 });
    expect(gray.data.length).toBe(320 * 240);
  });

  it('refuses a header that claims another size before decoding anything', async () => {
    const huge = Buffer.from(jpeg);
    huge.writeUInt16BE(16000, sofOffset(jpeg) + 5);
    huge.writeUInt16BE(16000, sofOffset(jpeg) + 7);
    await expect(codec.decode(huge, 'jpeg', shape)).rejects.toThrow(ShapeMismatchError);
    await expect(codec.decode(huge, 'jpeg', shape)).rejects.toThrow('decoded jpeg image is 16000x16000x3, but the frame announced 320x240x3');
    await expect(codec.decode(jpeg, 'jpeg', { ...shape, channels: 4 })).rejects.toThrow(/announced 320x240x4/);
  });

  it('refuses a truncated image instead of showing half of it', async () => {
    const truncated = jpeg.subarray(0, Math.floor(jpeg.length * 0.6));
    await expect(codec.decode(truncated, 'jpeg', shape)).rejects.toThrow(DecodeError);
    await expect(codec.decode(truncated, 'jpeg', shape)).rejects.toThrow(/jpeg payload of \d+ bytes is not a decodable image: .+/);
    const noHeader = Buffer.from('this is not an image at all, just text');
    await expect(codec.decode(noHeader, 'jpeg', shape)).rejects.toThrow('jpeg payload of 38 bytes is not a decodable image: no JPEG frame header');
  });

  it('keeps many decodes in flight apart', async () => {
    // Uniform frames 30 grey levels apart: any mix-up between decodes shows as an error of 30.
    const frames = Array.from({ length: 8 }, (_, i) => ({ ...shape, data: Buffer.alloc(image.data.length, i * 30) }));
    const payloads = await Promise.all(frames.map((frame) => codec.encode(frame, 'jpeg')));
    const decoded = await Promise.all(payloads.map((payload) => codec.decode(payload, 'jpeg', shape)));
    decoded.forEach((frame, i) => expect(meanAbsoluteError(frame, frames[i]!)).toBeLessThan(2));
  });
});

/** Offset of the SOF0 marker (FF C0) that OpenCV's encoder writes. */
function sofOffset(jpeg: Buffer): number {
  const at = jpeg.indexOf(Buffer.from([0xff, 0xc0]));
  if (at < 0) throw new Error('no SOF0 marker in the test image');
  return at;
}
