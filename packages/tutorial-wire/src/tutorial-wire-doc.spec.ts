// Keeps TUTORIAL-WIRE.md honest: its worked example is Python's bytes and ours, its tables list
// what the code accepts, and the messages it quotes are the ones the code gives.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as errors from './errors';
import { TutorialFrameDecoder } from './frame-decoder';
import { ACCEPTED_OPCODES, OPCODE_NAMES, Op } from './opcodes';
import { ALLOWED_GLOBALS, decodeArrayPickle } from './pickle-decoder';
import { encodeTutorialFrame } from './pickle-encoder';
import { arrayPickle, bytes, fixture, frame, pixelBytes, proto, shortStr, u64 } from './testing/pickle-bytes';

const doc = readFileSync(join(__dirname, '..', 'TUTORIAL-WIRE.md'), 'utf8');

function block(name: string): string {
  const found = new RegExp(`<!-- ${name}:start -->([\\s\\S]*?)<!-- ${name}:end -->`).exec(doc)?.[1];
  if (!found) throw new Error(`TUTORIAL-WIRE.md has no ${name} block`);
  return found;
}

/** Reads the annotated hex table "offset  bytes  meaning", checking each offset follows the last. */
function workedExampleBytes(): Buffer {
  const out: number[] = [];
  for (const line of block('worked-example').split('\n')) {
    const row = /^([0-9a-f]{4}) {2,}((?:[0-9a-f]{2} )*[0-9a-f]{2})(?: {2,}|$)/.exec(line);
    if (!row) continue;
    expect(parseInt(row[1] as string, 16)).toBe(out.length);
    out.push(...(row[2] as string).split(' ').map((b) => parseInt(b, 16)));
  }
  return Buffer.from(out);
}

/** The rows of a markdown table, cells trimmed, header and rule left out. */
function tableRows(text: string, firstHeader: string): string[][] {
  const lines = text.split('\n');
  const start = lines.findIndex((line) => line.startsWith(`| ${firstHeader} |`));
  if (start < 0) throw new Error(`no table starting with ${firstHeader}`);
  const rows: string[][] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(line.split('|').slice(1, -1).map((cell) => cell.trim()));
  }
  return rows;
}

function refusalMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected a refusal');
}

describe('TUTORIAL-WIRE.md', () => {
  it('has a worked example that is the frame Python writes and the frame encodeTutorialFrame writes', () => {
    const python = Buffer.from(fixture('p4-example-2x1').pickle, 'hex');
    const { head, pixels, tail } = encodeTutorialFrame({ width: 2, height: 1, data: Buffer.from([0x10, 0x20, 0x30, 0x40, 0x50, 0x60]) });
    const example = workedExampleBytes();
    expect(example.toString('hex')).toBe(Buffer.concat([u64(python.length), python]).toString('hex'));
    expect(example.toString('hex')).toBe(Buffer.concat([head, pixels, tail]).toString('hex'));
  });

  it('has a worked example that decodes to the image it describes', () => {
    const [pickle, ...rest] = new TutorialFrameDecoder().push(workedExampleBytes());
    expect(rest).toEqual([]);
    const image = decodeArrayPickle(pickle as Buffer);
    expect({ ...image, data: image.data.toString('hex') }).toEqual({ width: 2, height: 1, channels: 3, order: 'C', data: '102030405060' });
  });

  it('lists exactly the accepted opcodes, with their bytes, names and protocols', () => {
    const rows = tableRows(block('opcodes'), 'byte');
    expect(rows.map(([byte, name, from]) => [Number(byte), name, Number(from)])).toEqual(
      expect.arrayContaining([...ACCEPTED_OPCODES].map(([byte, protocol]) => [byte, OPCODE_NAMES.get(byte), protocol])),
    );
    expect(rows).toHaveLength(ACCEPTED_OPCODES.size);
  });

  it('lists exactly the allowed globals', () => {
    const rows = tableRows(doc, 'module');
    expect(rows.map(([module, name]) => `${module?.replace(/`/g, '')}\n${name?.replace(/`/g, '')}`).sort()).toEqual([...ALLOWED_GLOBALS.keys()].sort());
  });

  it('lists every error code with its class', () => {
    const rows = tableRows(doc, 'code');
    const classes = [errors.NotAllowedError, errors.UnsupportedArrayError, errors.TooLargeError, errors.LengthMismatchError, errors.TruncatedError, errors.MalformedPickleError];
    expect(rows.map(([code, name]) => [code?.replace(/`/g, ''), name?.replace(/`/g, '')])).toEqual(
      classes.map((ErrorClass) => {
        const error = new ErrorClass('x');
        return [error.code, error.name];
      }),
    );
  });

  it('quotes the messages the code gives', () => {
    // Python's pickle of an object whose __reduce__ returns (os.system, ('true',)), protocol 4.
    const system = bytes(proto(4), frame(31), shortStr('posix'), Op.MEMOIZE, shortStr('system'), Op.MEMOIZE, Op.STACK_GLOBAL, Op.MEMOIZE,
      shortStr('true'), Op.MEMOIZE, Op.TUPLE1, Op.MEMOIZE, Op.REDUCE, Op.MEMOIZE, Op.STOP);
    const nextBuffer = bytes(proto(5), frame(2), 0x97, Op.STOP);
    const quoted = [
      refusalMessage(() => decodeArrayPickle(system)),
      refusalMessage(() => decodeArrayPickle(nextBuffer)),
      refusalMessage(() => decodeArrayPickle(arrayPickle({ shape: [1, 2, 3], data: pixelBytes(Buffer.alloc(6)), typeString: 'f4' }))).replace(/^.*: dtype/, 'dtype'),
      refusalMessage(() => new TutorialFrameDecoder().push(u64(2n ** 64n - 1n))).replace(/ bytes for .*/, ' bytes...'),
    ];
    expect(quoted).toEqual([
      'pickle opcode 0x93 STACK_GLOBAL at byte 28 on posix.system is not allowed: only numpy array pickles are accepted',
      'pickle opcode 0x97 NEXT_BUFFER at byte 11 is not allowed: only numpy array pickles are accepted',
      "dtype 'f4' is not accepted, only uint8 ('u1')",
      'frame length 18446744073709551615 exceeds the limit of 265421312 bytes...',
    ]);
    for (const message of quoted) expect(doc.replace(/\n\s*/g, ' ')).toContain(message);
  });
});
