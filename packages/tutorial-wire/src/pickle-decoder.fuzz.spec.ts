// 100,000 random mutations of valid frame pickles: the decoder must answer each with an image
// that is consistent, or with one of its own errors; never another exception, never a hang,
// never an allocation beyond the limit.
import fc from 'fast-check';
import { TutorialWireError, type TutorialWireErrorCode } from './errors';
import { limitsFor } from './limits';
import { decodeArrayPickle, type DecodedImage } from './pickle-decoder';
import { encodeTutorialFrame } from './pickle-encoder';
import { fixture } from './testing/pickle-bytes';
import { mutate, mutationsArbitrary } from './testing/mutations';

const RUNS = 100_000;
const SEED = 20261130;
const maxSize = { width: 16, height: 16 };
const { maxPixelBytes } = limitsFor(maxSize);

function encoded8x6(): Buffer {
  const data = Buffer.from(Array.from({ length: 8 * 6 * 3 }, (_, i) => (i * 53) & 0xff));
  const { head, pixels, tail } = encodeTutorialFrame({ width: 8, height: 6, data });
  return Buffer.concat([head, pixels, tail]).subarray(8);
}

/** Valid pickles of small frames: ours (8x6x3, protocol 4) and Python's at every protocol and order. */
const bases: Buffer[] = [
  encoded8x6(),
  ...['p2-bgr', 'p3-bgr', 'p5-bgr', 'p2-fortran-gray', 'p4-fortran-bgr', 'p5-fortran-bgr-numpy2', 'p3-gray1', 'p4-bgra-numpy2', 'p5-readonly-bgr']
    .map((name) => Buffer.from(fixture(name).pickle, 'hex')),
];

/** Records the size of every Buffer allocated while `measuring` is on. */
const allocations = { measuring: false, largest: 0, count: 0 };
const spies = (['alloc', 'allocUnsafe', 'allocUnsafeSlow'] as const).map((method) => {
  const original = Buffer[method].bind(Buffer) as (size: number, ...rest: unknown[]) => Buffer;
  return jest.spyOn(Buffer, method).mockImplementation(((size: number, ...rest: unknown[]) => {
    if (allocations.measuring) {
      allocations.count++;
      allocations.largest = Math.max(allocations.largest, size);
    }
    return original(size, ...rest);
  }) as never);
});
afterAll(() => spies.forEach((spy) => spy.mockRestore()));

function decodeMeasured(pickle: Buffer): DecodedImage {
  allocations.measuring = true;
  try {
    return decodeArrayPickle(pickle, { maxSize });
  } finally {
    allocations.measuring = false;
  }
}

it(`answers ${RUNS} mutated pickles with a consistent image or the package's own error`, () => {
  const outcomes = new Map<TutorialWireErrorCode | 'image', number>();
  fc.assert(
    fc.property(fc.nat({ max: bases.length - 1 }), mutationsArbitrary, (baseIndex, mutations) => {
      const pickle = mutate(bases[baseIndex] as Buffer, mutations);
      let image: DecodedImage;
      try {
        image = decodeMeasured(pickle);
      } catch (err) {
        if (!(err instanceof TutorialWireError)) throw err; // fails the property, with its seed and path
        if (err.message.length > 400) throw new Error(`message of ${err.message.length} characters: ${err.message.slice(0, 200)}`);
        outcomes.set(err.code, (outcomes.get(err.code) ?? 0) + 1);
        return;
      }
      outcomes.set('image', (outcomes.get('image') ?? 0) + 1);
      const { width, height, channels, data } = image;
      const consistent = [1, 3, 4].includes(channels) && width >= 1 && height >= 1 &&
        width <= maxSize.width && height <= maxSize.height && data.length === width * height * channels;
      if (!consistent) throw new Error(`inconsistent image ${width}x${height}x${channels} with ${data.length} bytes`);
    }),
    { seed: SEED, numRuns: RUNS },
  );
  expect(allocations.largest).toBeLessThanOrEqual(maxPixelBytes);
  expect(allocations.count).toBeGreaterThan(0); // accepted Fortran and protocol 2 mutants did allocate
  // The mutations reach every check, not only the first few bytes.
  expect([...outcomes.keys()].sort()).toEqual(
    ['ERR_LENGTH_MISMATCH', 'ERR_MALFORMED', 'ERR_NOT_ALLOWED', 'ERR_TOO_LARGE', 'ERR_TRUNCATED', 'ERR_UNSUPPORTED_ARRAY', 'image'].sort(),
  );
});
