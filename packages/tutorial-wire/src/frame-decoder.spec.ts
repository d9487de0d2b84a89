import { TutorialWireError } from './errors';
import { TutorialFrameDecoder, type TutorialFrameDecoderOptions } from './frame-decoder';
import { maxPickleLength } from './limits';
import { decodeArrayPickle } from './pickle-decoder';
import { encodeTutorialFrame } from './pickle-encoder';
import { fixture, u64 } from './testing/pickle-bytes';

/** struct.pack("Q", len(a)) + a */
function framed(pickle: Buffer): Buffer {
  return Buffer.concat([u64(pickle.length), pickle]);
}

const pickles = [
  Buffer.from(fixture('p4-bgr').pickle, 'hex'),
  Buffer.from(fixture('p5-fortran-bgr').pickle, 'hex'),
  Buffer.from(fixture('p2-gray').pickle, 'hex'),
  Buffer.alloc(0), // framing does not judge pickles: an empty one is the pickle decoder's to refuse
  Buffer.from(fixture('p3-bgra-numpy2').pickle, 'hex'),
];
const stream = Buffer.concat(pickles.map(framed));

/** Copies of the pieces, like separate socket reads. */
function splitAt(bytes: Buffer, offsets: number[]): Buffer[] {
  const cuts = [0, ...offsets, bytes.length];
  return cuts.slice(1).map((end, i) => Buffer.from(bytes.subarray(cuts[i], end)));
}

function decodeAll(chunks: Buffer[], options?: TutorialFrameDecoderOptions): Buffer[] {
  const decoder = new TutorialFrameDecoder(options);
  const out = chunks.flatMap((chunk) => decoder.push(chunk));
  decoder.end();
  expect(decoder.midFrame).toBe(false);
  expect(decoder.bufferedBytes).toBe(0);
  return out;
}

const hex = (buffers: Buffer[]): string[] => buffers.map((b) => b.toString('hex'));

describe('TutorialFrameDecoder', () => {
  it('decodes a stream of frames pushed whole', () => {
    expect(hex(decodeAll([stream]))).toEqual(hex(pickles));
  });

  it('decodes the stream split in two at every offset', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      expect(hex(decodeAll(splitAt(stream, [cut])))).toEqual(hex(pickles));
    }
  });

  it('decodes the stream split in three at every pair of offsets around each length prefix', () => {
    let start = 0;
    for (const pickle of pickles) {
      for (let a = start; a <= start + 9; a++) {
        for (let b = a; b <= start + 12 && b <= stream.length; b++) {
          expect(hex(decodeAll(splitAt(stream, [a, b])))).toEqual(hex(pickles));
        }
      }
      start += 8 + pickle.length;
    }
  });

  it('decodes the stream pushed one byte at a time', () => {
    expect(hex(decodeAll(Array.from(stream, (byte) => Buffer.from([byte]))))).toEqual(hex(pickles));
  });

  it('returns a view of the chunk when a pickle lies in one, and one copy when it spans chunks', () => {
    const one = framed(pickles[0] as Buffer);
    const decoder = new TutorialFrameDecoder();
    const [whole] = decoder.push(one);
    one.fill(0xee, 8);
    expect(whole?.every((byte) => byte === 0xee)).toBe(true);
    const again = framed(pickles[0] as Buffer);
    const [first, second] = splitAt(again, [20]);
    decoder.push(first as Buffer);
    const [copied] = decoder.push(second as Buffer);
    (second as Buffer).fill(0xee);
    expect(copied?.toString('hex')).toBe((pickles[0] as Buffer).toString('hex'));
  });

  it('copies a pickle that spans chunks into the buffer `allocate` gives, asked for once all its bytes are here', () => {
    const asked: number[] = [];
    const given = Buffer.alloc((pickles[0] as Buffer).length);
    const decoder = new TutorialFrameDecoder({ allocate: (bytes) => (asked.push(bytes), given) });
    const [first, second] = splitAt(framed(pickles[0] as Buffer), [20]);
    expect(decoder.push(first as Buffer)).toEqual([]);
    expect(asked).toEqual([]);
    const [copied] = decoder.push(second as Buffer);
    expect(asked).toEqual([(pickles[0] as Buffer).length]);
    expect(copied).toBe(given);
    expect(given.toString('hex')).toBe((pickles[0] as Buffer).toString('hex'));
    // A pickle inside one chunk needs no buffer.
    decoder.push(framed(pickles[1] as Buffer));
    expect(asked).toHaveLength(1);
  });

  it('hands over pickles that decode to the frames encoded', () => {
    const frames = [1, 2, 3].map((n) => ({ width: 8 * n, height: 6, data: Buffer.alloc(8 * n * 6 * 3, n) }));
    const wire = Buffer.concat(frames.flatMap((frame) => {
      const { head, pixels, tail } = encodeTutorialFrame(frame);
      return [head, pixels, tail];
    }));
    const decoded = decodeAll(splitAt(wire, [5, 100, 700])).map((pickle) => decodeArrayPickle(pickle));
    expect(decoded.map(({ width, height, data }) => ({ width, height, data: data.toString('hex') }))).toEqual(
      frames.map(({ width, height, data }) => ({ width, height, data: data.toString('hex') })),
    );
  });

  it('refuses a length above the limit for --max-size from the 8 bytes alone, before buffering', () => {
    const maxSize = { width: 8, height: 6 };
    const limit = maxPickleLength(maxSize);
    expect(limit).toBe(2 * 8 * 6 * 4 + 512);
    expect(new TutorialFrameDecoder({ maxSize }).push(Buffer.concat([u64(limit), Buffer.alloc(limit)]))).toHaveLength(1);
    for (const length of [BigInt(limit + 1), 2n ** 32n, 2n ** 63n, 2n ** 64n - 1n]) {
      const decoder = new TutorialFrameDecoder({ maxSize });
      decoder.push(u64(length).subarray(0, 5));
      let error: unknown;
      try {
        decoder.push(u64(length).subarray(5));
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(TutorialWireError);
      expect(error).toMatchObject({ code: 'ERR_TOO_LARGE', message: `frame length ${length} exceeds the limit of ${limit} bytes for the configured maximum image size` });
      expect(decoder.bufferedBytes).toBe(0);
    }
    // The default limit follows 7680x4320: 4 channels, protocol 2's text at up to 2 bytes a byte.
    expect(maxPickleLength()).toBe(2 * 7680 * 4320 * 4 + 512);
  });

  it('stays failed after an error, and holds nothing', () => {
    const decoder = new TutorialFrameDecoder({ maxSize: { width: 1, height: 1 } });
    expect(() => decoder.push(u64(10_000))).toThrow('exceeds the limit');
    const first = decoder.failed;
    expect(first?.code).toBe('ERR_TOO_LARGE');
    expect(() => decoder.push(framed(Buffer.alloc(1)))).toThrow(first as Error);
    expect(() => decoder.end()).toThrow(first as Error);
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('reports a stream that ends inside a frame as truncated', () => {
    const cases: [Buffer, string][] = [
      [stream.subarray(0, 3), 'the stream ended 3 bytes into a frame\'s 8-byte length'],
      [stream.subarray(0, 8 + 10), `the stream ended 10 bytes into a ${(pickles[0] as Buffer).length}-byte pickle`],
    ];
    for (const [bytes, message] of cases) {
      const decoder = new TutorialFrameDecoder();
      expect(decoder.push(Buffer.from(bytes))).toEqual([]);
      expect(decoder.midFrame).toBe(true);
      expect(() => decoder.end()).toThrow(message);
      expect(decoder.failed?.code).toBe('ERR_TRUNCATED');
    }
    const complete = new TutorialFrameDecoder();
    complete.push(stream);
    expect(() => complete.end()).not.toThrow();
  });

  it('refuses a --max-size that is not a positive integer size', () => {
    expect(() => new TutorialFrameDecoder({ maxSize: { width: 0, height: 10 } })).toThrow('maxSize.width must be a positive integer, got 0');
    expect(() => new TutorialFrameDecoder({ maxSize: { width: 10, height: 1.5 } })).toThrow('maxSize.height must be a positive integer');
  });
});
