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
