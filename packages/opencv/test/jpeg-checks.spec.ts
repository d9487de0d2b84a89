import type { RawImage } from '@camstream/media';
import { OpenCVCodec } from '../src/codec';
import { DecodeError } from '../src/errors';
import { findJpegDamage } from '../src/jpeg';
import { TestPatternSource } from '../src/test-pattern';

// What the codec finds wrong with a JPEG before decoding it, and what it says when libjpeg-turbo
// fails without a reason. A payload refused from its headers must not cost the caller a buffer.

const END_OF_IMAGE = Buffer.from([0xff, 0xd9]);

describe('JPEG payloads that cannot be the image they claim', () => {
  const codec = new OpenCVCodec();
  const shape = { width: 320, height: 240, channels: 3 };
  let jpeg: Buffer;

  beforeAll(async () => {
    const pattern = new TestPatternSource(320, 240, 0);
    const image = (await pattern.read())!.image;
    await pattern.close();
    jpeg = await codec.encode(image, 'jpeg');
  });

  /** A buffer provider for decode() that counts how often it was asked. */
  function countingBuffer(bytes: number) {
    const provider = Object.assign(() => {
      provider.calls++;
      return Buffer.alloc(bytes);
    }, { calls: 0 });
    return provider;
  }

  /** The same JPEG with its frame header claiming another size. */
  function claiming(width: number, height: number): Buffer {
    const patched = Buffer.from(jpeg);
    const sof = patched.indexOf(Buffer.from([0xff, 0xc0]));
    patched.writeUInt16BE(height, sof + 5);
    patched.writeUInt16BE(width, sof + 7);
    return patched;
  }

  it('finds nothing wrong with a whole JPEG, and decodes it into the buffer it asks for', async () => {
    expect(findJpegDamage(jpeg)).toBeUndefined();
    const into = countingBuffer(320 * 240 * 3);
    const image: RawImage = await codec.decode(jpeg, 'jpeg', shape, into);
    expect(into.calls).toBe(1);
    expect(image.data.length).toBe(320 * 240 * 3);
  });

  it('says a JPEG cut short is truncated, without asking for a buffer', async () => {
    const truncated = jpeg.subarray(0, Math.floor(jpeg.length * 0.6));
    expect(findJpegDamage(truncated)).toBe('it is truncated (no end-of-image marker after its frame header)');
    const into = countingBuffer(320 * 240 * 3);
    await expect(codec.decode(truncated, 'jpeg', shape, into)).rejects.toThrow(
      new DecodeError(`jpeg payload of ${truncated.length} bytes is not a decodable image: it is truncated (no end-of-image marker after its frame header)`),
    );
    expect(into.calls).toBe(0);
  });

  it('says a JPEG too small for the size it claims is too small, without asking for a buffer', async () => {
    const huge = claiming(7680, 4320);
    // 4:2:0 colour: 960 x 540 luma blocks and two 480 x 270 chroma planes, one bit each at least.
    const least = (960 * 540 + 2 * 480 * 270) / 8;
    const reason = `it is too small for a 7680x4320 image: a Huffman-coded JPEG of that size has at least ${least} bytes (one bit per 8x8 block)`;
    expect(findJpegDamage(huge)).toBe(reason);
    const into = countingBuffer(7680 * 4320 * 3);
    await expect(codec.decode(huge, 'jpeg', { width: 7680, height: 4320, channels: 3 }, into)).rejects.toThrow(
      `jpeg payload of ${huge.length} bytes is not a decodable image: ${reason}`,
    );
    expect(into.calls).toBe(0);
  });

  it('says what libjpeg-turbo could not tell when the image data itself is broken', async () => {
    // Whole headers and an end-of-image marker, but the compressed data stops halfway.
    const broken = Buffer.concat([jpeg.subarray(0, Math.floor(jpeg.length * 0.6)), END_OF_IMAGE]);
    expect(findJpegDamage(broken)).toBeUndefined();
    const failure = codec.decode(broken, 'jpeg', shape);
    await expect(failure).rejects.toThrow(DecodeError);
    await expect(failure).rejects.toThrow(
      `jpeg payload of ${broken.length} bytes is not a decodable image: its image data is corrupt or ends early (libjpeg-turbo gave no reason)`,
    );
  });
});
