// Byte builders for tests: pickles assembled opcode by opcode, independently of the encoder, so
// that tests can build any malformed or hostile pickle. Not part of the package's API.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Op } from '../opcodes';

/** Not accepted by the decoder (no image has shape ()), but a test may want to send it. */
const EMPTY_TUPLE = 0x29;

export type Part = number | readonly number[] | Uint8Array;

/** Concatenates opcode bytes, byte arrays and Buffers. */
export function bytes(...parts: Part[]): Buffer {
  return Buffer.concat(parts.map((part) => (typeof part === 'number' ? Buffer.from([part]) : Buffer.from(part as number[]))));
}

export function u32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32LE(value);
  return out;
}

export function u64(value: bigint | number): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64LE(BigInt(value));
  return out;
}

export const proto = (protocol: number): Buffer => bytes(Op.PROTO, protocol);
export const frame = (length: bigint | number): Buffer => bytes(Op.FRAME, u64(length));
export const shortStr = (text: string): Buffer => bytes(Op.SHORT_BINUNICODE, Buffer.byteLength(text), Buffer.from(text));
export const binUnicode = (text: string | Buffer): Buffer => {
  const utf8 = typeof text === 'string' ? Buffer.from(text) : text;
  return bytes(Op.BINUNICODE, u32(utf8.length), utf8);
};
export const global = (module: string, name: string): Buffer => bytes(Op.GLOBAL, Buffer.from(`${module}\n${name}\n`));
export const stackGlobal = (module: string, name: string): Buffer => bytes(shortStr(module), shortStr(name), Op.STACK_GLOBAL);

/** As CPython's save_long: BININT1, BININT2 or BININT. */
export function int(value: number): Buffer {
  if (value >= 0 && value <= 0xff) return bytes(Op.BININT1, value);
  if (value >= 0 && value <= 0xffff) return bytes(Op.BININT2, value & 0xff, value >> 8);
  const out = Buffer.alloc(5);
  out[0] = Op.BININT;
  out.writeInt32LE(value, 1);
  return out;
}

/** LONG1 with the minimal little-endian two's-complement encoding of `value`. */
export function long1(value: bigint): Buffer {
  const digits: number[] = [];
  let rest = value;
  while (rest !== 0n && rest !== -1n) {
    digits.push(Number(rest & 0xffn));
    rest >>= 8n;
  }
  const last = digits[digits.length - 1];
  if (value >= 0n && (digits.length === 0 || (last as number) >= 0x80)) digits.push(0);
  if (value < 0n && (digits.length === 0 || (last as number) < 0x80)) digits.push(0xff);
  return bytes(Op.LONG1, digits.length, digits);
}

export function pixelBytes(data: Uint8Array): Buffer {
  return data.length <= 0xff ? bytes(Op.SHORT_BINBYTES, data.length, data) : bytes(Op.BINBYTES, u32(data.length), data);
}

/** numpy's dtype('u1', False, True) with its state (3, '|', None, None, None, -1, -1, 0). */
export function uint8Dtype(typeString = 'u1'): Buffer {
  return bytes(
    stackGlobal('numpy', 'dtype'), shortStr(typeString), Op.NEWFALSE, Op.NEWTRUE, Op.TUPLE3, Op.REDUCE,
    Op.MARK, int(3), shortStr('|'), Op.NONE, Op.NONE, Op.NONE, int(-1), int(-1), int(0), Op.TUPLE, Op.BUILD,
  );
}

export interface ArrayPickleOptions {
  shape: readonly number[];
  /** The pixel bytes' opcode and payload; default pixelBytes(data). */
  data: Buffer;
  fortran?: boolean;
  typeString?: string;
  module?: string;
}

/**
 * A protocol 4 numpy array pickle, as numpy writes it but without FRAME and MEMOIZE (which
 * Python's pickle.loads does not need): _reconstruct, then BUILD with (1, shape, dtype, is_fortran, data).
 */
export function arrayPickle(options: ArrayPickleOptions): Buffer {
  const { shape, data, fortran = false, typeString = 'u1', module = 'numpy.core.multiarray' } = options;
  const shapeTuple = shape.length <= 3
    ? bytes(...shape.map(int), [EMPTY_TUPLE, Op.TUPLE1, Op.TUPLE2, Op.TUPLE3][shape.length] as number)
    : bytes(Op.MARK, ...shape.map(int), Op.TUPLE);
  return bytes(
    proto(4),
    stackGlobal(module, '_reconstruct'), stackGlobal('numpy', 'ndarray'), int(0), Op.TUPLE1, Op.SHORT_BINBYTES, 1, 0x62, Op.TUPLE3, Op.REDUCE,
    Op.MARK, int(1), shapeTuple, uint8Dtype(typeString), fortran ? Op.NEWTRUE : Op.NEWFALSE, data, Op.TUPLE, Op.BUILD,
    Op.STOP,
  );
}

/** The fixtures made by fixtures/generate.py (Python 3.11, numpy 1.24; numpy 2 spellings derived). */
export interface AcceptedFixture {
  name: string;
  numpy: 1 | 2;
  protocol: number;
  shape: number[];
  order: 'C' | 'F';
  /** The array's bytes in C order, hex. */
  pixels: string;
  pickle: string;
}

export interface RefusedFixture {
  name: string;
  protocol: number;
  code: string;
  mentions: string;
  pickle: string;
}

export const FIXTURES_DIR = join(__dirname, '..', '..', 'fixtures');
export const FIXTURES_FILE = join(FIXTURES_DIR, 'numpy-pickles.json');

export function loadFixtures(): { accepted: AcceptedFixture[]; refused: RefusedFixture[] } {
  return JSON.parse(readFileSync(FIXTURES_FILE, 'utf8')) as { accepted: AcceptedFixture[]; refused: RefusedFixture[] };
}

export function fixture(name: string): AcceptedFixture {
  const found = loadFixtures().accepted.find((entry) => entry.name === name);
  if (!found) throw new Error(`no fixture ${name}`);
  return found;
}
