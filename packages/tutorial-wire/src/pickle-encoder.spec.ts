import { decodeArrayPickle } from './pickle-decoder';
import { encodeTutorialFrame, type TutorialFrameParts } from './pickle-encoder';
import { fixture } from './testing/pickle-bytes';

function wire(parts: TutorialFrameParts): Buffer {
  return Buffer.concat([parts.head, parts.pixels, parts.tail]);
}

function image(width: number, height: number): { width: number; height: number; data: Buffer } {
  const data = Buffer.alloc(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 8)) & 0xff;
  return { width, height, data };
}

describe('encodeTutorialFrame', () => {
  it("writes byte for byte what Python's pickle.dumps writes for the same array (the 2x1 example)", () => {
    // Python: pickle.dumps(np.array([[[0x10, 0x20, 0x30], [0x40, 0x50, 0x60]]], np.uint8)), protocol 4.
    const python = Buffer.from(fixture('p4-example-2x1').pickle, 'hex');
    const parts = encodeTutorialFrame({ width: 2, height: 1, data: Buffer.from([0x10, 0x20, 0x30, 0x40, 0x50, 0x60]) });
    expect(wire(parts).subarray(8).toString('hex')).toBe(python.toString('hex'));
  });

  it('returns the pixel buffer itself, between a head with the little-endian length and a small tail', () => {
    for (const [width, height] of [[2, 1], [40, 30], [640, 480]] as const) {
      const frame = image(width, height);
      const parts = encodeTutorialFrame(frame);
      expect(parts.pixels).toBe(frame.data);
      expect(parts.head.length).toBeLessThan(200);
      expect(parts.tail.length).toBeLessThan(20);
      const bytes = wire(parts);
      expect(parts.byteLength).toBe(bytes.length);
      expect(bytes.readBigUInt64LE(0)).toBe(BigInt(bytes.length - 8));
      const decoded = decodeArrayPickle(bytes.subarray(8));
      expect(decoded).toMatchObject({ width, height, channels: 3, order: 'C' });
      expect(decoded.data.equals(frame.data)).toBe(true);
    }
  });

  it('frames like CPython: one FRAME under 64 KiB of pixels, pixels outside frames from 64 KiB on', () => {
    const small = encodeTutorialFrame(image(21845, 1)); // 65535 bytes of pixels
    const large = encodeTutorialFrame(image(21846, 1)); // 65538
    const frameLength = (buffer: Buffer, at: number): number => Number(buffer.readBigUInt64LE(at + 1));
    expect(small.head[10]).toBe(0x95);
    expect(frameLength(small.head, 10)).toBe(small.byteLength - 8 - 2 - 9);
    expect(small.tail.toString('hex')).toBe('94749462' + '2e');
    expect(frameLength(large.head, 10)).toBe(large.head.length - 10 - 9 - 5); // up to BINBYTES and its length
    expect(large.tail.toString('hex')).toBe('95' + '0500000000000000' + '947494622e');
  });

  it('refuses sizes and buffers that do not make a BGR image', () => {
    expect(() => encodeTutorialFrame({ width: 2, height: 1, data: Buffer.alloc(5) })).toThrow('a 2x1 BGR image has 6 bytes, but the buffer has 5');
    expect(() => encodeTutorialFrame({ width: 0, height: 1, data: Buffer.alloc(0) })).toThrow('width must be an integer from 1 to 2^31-1, got 0');
    expect(() => encodeTutorialFrame({ width: 2, height: 1.5, data: Buffer.alloc(9) })).toThrow('height must be an integer');
  });
});
