// Random damage to valid pickles, for the fuzz tests: a fast-check arbitrary (seeded by the test,
// so a failure repeats) and the function that applies it.
import fc from 'fast-check';
import { ACCEPTED_OPCODES } from '../opcodes';

export type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'insert'; at: number; bytes: number[] }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'truncate'; at: number };

/** Bytes worth trying: the accepted opcodes (structure), and edge values of lengths and ints. */
const interestingBytes = [...ACCEPTED_OPCODES.keys(), 0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff];
const anyByte = fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(...interestingBytes));

export const mutationArbitrary: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: anyByte }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.array(anyByte, { minLength: 1, maxLength: 9 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 9 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);

/** One to four mutations, applied in order. */
export const mutationsArbitrary = fc.array(mutationArbitrary, { minLength: 1, maxLength: 4 });

export function mutate(original: Buffer, mutations: readonly Mutation[]): Buffer {
  let bytes = Buffer.from(original);
  for (const mutation of mutations) {
    const at = mutation.at % (bytes.length + 1); // insert and truncate may act at the very end
    switch (mutation.kind) {
      case 'flip':
        if (at < bytes.length) bytes[at] = (bytes[at] as number) ^ (1 << mutation.bit);
        break;
      case 'set':
        if (at < bytes.length) bytes[at] = mutation.value;
        break;
      case 'insert':
        bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(mutation.bytes), bytes.subarray(at)]);
        break;
      case 'delete':
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + mutation.count)]);
        break;
      case 'truncate':
        bytes = bytes.subarray(0, at);
        break;
    }
  }
  return bytes;
}
