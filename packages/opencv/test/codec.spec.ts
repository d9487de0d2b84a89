import type { RawImage } from '@camstream/media';
import { OpenCVCodec } from '../src/codec';
import { DecodeError, ShapeMismatchError } from '../src/errors';
import { TestPatternSource } from '../src/test-pattern';
import { meanAbsoluteError } from './support/images';

describe('OpenCVCodec', () => {
  const codec = new OpenCVCodec();
  let image: RawImage;
  const shape = { width: 320, height: 240, channels: 3 };

  beforeAll(async () => {
    const pattern = new TestPatternSource(320, 240, 0);
    image = (await pattern.read())!.image;
    await pattern.close();
  });

  it('raw-bgr: encode hands back the image bytes themselves, decode wraps the payload', async () => {
    const payload = await codec.encode(image, 'raw-bgr');
    expect(payload).toBe(image.data);
    const decoded = await codec.decode(payload, 'raw-bgr', shape);
    expect(decoded).toEqual({ ...shape, data: payload });
    expect(decoded.data).toBe(payload);
  });

  it('png round trip is exact', async () => {
    const payload = await codec.encode(image, 'png');
    expect(payload.subarray(1, 4).toString('latin1')).toBe('PNG');
    const decoded = await codec.decode(payload, 'png', shape);
    expect(decoded).toMatchObject(shape);
    expect(decoded.data.equals(image.data)).toBe(true);
  });

  it('jpeg round trip is close, and quality changes the size', async () => {
    const payload = await codec.encode(image, 'jpeg');
    expect(payload[0]).toBe(0xff);
    expect(payload[1]).toBe(0xd8);
    const decoded = await codec.decode(payload, 'jpeg', shape);
    expect(decoded).toMatchObject(shape);
    expect(decoded.data.length).toBe(image.data.length);
    expect(meanAbsoluteError(decoded, image)).toBeLessThan(4);
    const small = await codec.encode(image, 'jpeg', { quality: 20 });
    const large = await codec.encode(image, 'jpeg', { quality: 95 });
    expect(small.length).toBeLessThan(large.length);
  });

  it('jpeg encodes in flight at once each give a JPEG of their own image (the output buffers are reused)', async () => {
    const frames = Array.from({ length: 6 }, (_, i) => ({ ...shape, data: Buffer.alloc(image.data.length, 20 + i * 40) }));
    const payloads = await Promise.all(frames.map((frame) => codec.encode(frame, 'jpeg')));
    // Encoded again after the first ones returned: the later encodes must not write into earlier JPEGs.
    await Promise.all(frames.map((frame) => codec.encode({ ...frame, data: Buffer.alloc(frame.data.length, 255) }, 'jpeg')));
    const decoded = await Promise.all(payloads.map((payload) => codec.decode(payload, 'jpeg', shape)));
    decoded.forEach((frame, i) => expect(meanAbsoluteError(frame, frames[i]!)).toBeLessThan(2));
  });

  it('jpeg encodes gray and BGRA images too', async () => {
    const gray = { width: 32, height: 16, channels: 1, data: Buffer.alloc(512, 90) };
    const grayJpeg = await codec.encode(gray, 'jpeg');
    const grayBack = await codec.decode(grayJpeg, 'jpeg', { width: 32, height: 16, channels: 1 });
    expect(meanAbsoluteError(grayBack, gray)).toBeLessThan(2);
    const bgra = { width: 32, height: 16, channels: 4, data: Buffer.alloc(32 * 16 * 4, 200) };
    const bgraBack = await codec.decode(await codec.encode(bgra, 'jpeg'), 'jpeg', { width: 32, height: 16, channels: 3 });
    expect(meanAbsoluteError(bgraBack, { width: 32, height: 16, channels: 3, data: Buffer.alloc(32 * 16 * 3, 200) })).toBeLessThan(2);
  });

  it('one-channel images round-trip through png', async () => {
    const gray = { width: 16, height: 8, channels: 1, data: Buffer.from(Array.from({ length: 128 }, (_, i) => i * 2)) };
    const decoded = await codec.decode(await codec.encode(gray, 'png'), 'png', { width: 16, height: 8, channels: 1 });
    expect(decoded.data.equals(gray.data)).toBe(true);
  });

  it('rejects garbage bytes with a clear error', async () => {
    const garbage = Buffer.from('this is not an image at all, just text');
    await expect(codec.decode(garbage, 'jpeg', shape)).rejects.toThrow(DecodeError);
    await expect(codec.decode(garbage, 'png', shape)).rejects.toThrow(/png payload of 38 bytes is not a decodable image/);
    await expect(codec.decode(Buffer.alloc(0), 'jpeg', shape)).rejects.toMatchObject({ code: 'ERR_DECODE' });
  });

  it('rejects an image whose size differs from the announced shape, naming both', async () => {
    const payload = await codec.encode(image, 'jpeg');
    const wrong = { width: 640, height: 480, channels: 3 };
    await expect(codec.decode(payload, 'jpeg', wrong)).rejects.toThrow(ShapeMismatchError);
    await expect(codec.decode(payload, 'jpeg', wrong)).rejects.toThrow('decoded jpeg image is 320x240x3, but the frame announced 640x480x3');
    await expect(codec.decode(image.data, 'raw-bgr', wrong)).rejects.toThrow(/raw-bgr payload has 230400 bytes, the announced 640x480x3 needs 921600/);
  });

  it('refuses to encode an image whose bytes do not match its shape', async () => {
    const broken = { ...image, height: 100 };
    await expect(codec.encode(broken, 'jpeg')).rejects.toThrow(/320x100x3 needs 96000 bytes, data has 230400/);
    await expect(codec.encode(image, 'jpeg', { quality: 101 })).rejects.toThrow(/quality/);
  });

  it('keeps encodes of many frames in flight correct (the Mat wraps the caller\'s bytes)', async () => {
    const frames = Array.from({ length: 6 }, (_, i) => ({ ...shape, data: Buffer.alloc(image.data.length, i * 40) }));
    const payloads = await Promise.all(frames.map((frame) => codec.encode(frame, 'png')));
    const decoded = await Promise.all(payloads.map((payload) => codec.decode(payload, 'png', shape)));
    decoded.forEach((frame, i) => expect(frame.data.equals(frames[i]!.data)).toBe(true));
  });
});

describe('OpenCVCodec.resize', () => {
  const codec = new OpenCVCodec();

  it('scales a BGR image down and up, into the given buffer, keeping its colours', async () => {
    const data = Buffer.alloc(64 * 32 * 3);
    for (let i = 0; i < data.length; i += 3) data.set([200, 100, 50], i);
    const image = { width: 64, height: 32, channels: 3, data };
    const into = Buffer.alloc(16 * 8 * 3);
    const small = await codec.resize(image, 16, 8, into);
    expect(small).toMatchObject({ width: 16, height: 8, channels: 3 });
    expect(small.data).toBe(into);
    expect([...small.data.subarray(0, 3)]).toEqual([200, 100, 50]);
    const big = await codec.resize(small, 64, 32);
    expect(big.data.length).toBe(64 * 32 * 3);
    expect([...big.data.subarray(-3)]).toEqual([200, 100, 50]);
  });

  it('returns the image itself at its own size, and refuses a bad target size', async () => {
    const image = { width: 4, height: 4, channels: 3, data: Buffer.alloc(48) };
    expect(await codec.resize(image, 4, 4)).toBe(image);
    await expect(codec.resize(image, 0, 4)).rejects.toThrow('resize target must be positive whole numbers, got 0x4');
  });
});
