import { TutorialWireError } from './errors';
import { ACCEPTED_OPCODES, OPCODE_NAMES, Op } from './opcodes';
import { decodeArrayPickle, type DecodedImage, type PickleDecodeOptions } from './pickle-decoder';
import {
  arrayPickle,
  binUnicode,
  bytes,
  fixture,
  frame,
  global,
  int,
  loadFixtures,
  long1,
  pixelBytes,
  proto,
  shortStr,
  stackGlobal,
  u32,
  u64,
  uint8Dtype,
} from './testing/pickle-bytes';

const { accepted, refused } = loadFixtures();
const pickleOf = (name: string): Buffer => Buffer.from(fixture(name).pickle, 'hex');

/** The error decodeArrayPickle throws (failing the test if it returns). */
function refusal(pickle: Buffer, options?: PickleDecodeOptions): TutorialWireError {
  let image: DecodedImage | undefined;
  try {
    image = decodeArrayPickle(pickle, options);
  } catch (err) {
    expect(err).toBeInstanceOf(TutorialWireError);
    return err as TutorialWireError;
  }
  throw new Error(`expected a refusal, got a ${image.width}x${image.height}x${image.channels} image`);
}

const bgr4x5 = Buffer.from(Array.from({ length: 60 }, (_, i) => (i * 37) & 0xff));

describe('decodeArrayPickle: what Python and numpy write', () => {
  it.each(accepted.map((entry) => [entry.name, entry] as const))('decodes %s to the array numpy pickled', (_name, entry) => {
    const image = decodeArrayPickle(Buffer.from(entry.pickle, 'hex'));
    const [height, width, channels = 1] = entry.shape;
    expect({ width: image.width, height: image.height, channels: image.channels, order: image.order }).toEqual({
      width,
      height,
      channels,
      order: entry.order,
    });
    expect(image.data.toString('hex')).toBe(entry.pixels);
  });

  it('covers protocols 2 to 5, numpy 1 and 2, C and Fortran order, and 1, 3 and 4 channels', () => {
    expect(new Set(accepted.map((entry) => entry.protocol))).toEqual(new Set([2, 3, 4, 5]));
    expect(new Set(accepted.map((entry) => entry.numpy))).toEqual(new Set([1, 2]));
    expect(new Set(accepted.map((entry) => entry.order))).toEqual(new Set(['C', 'F']));
    expect(new Set(accepted.map((entry) => entry.shape.length === 2 ? 1 : entry.shape[2]))).toEqual(new Set([1, 3, 4]));
    expect(accepted.filter((entry) => entry.pickle.includes(Buffer.from('numpy._core.').toString('hex')))).toHaveLength(accepted.length / 2);
  });

  it.each(refused.map((entry) => [entry.name, entry] as const))('refuses %s with a clear error', (_name, entry) => {
    const error = refusal(Buffer.from(entry.pickle, 'hex'));
    expect(error.code).toBe(entry.code);
    expect(error.message).toContain(entry.mentions);
  });

  it('returns a view of the pickle for C-order bytes (no copy), at protocols 3 to 5', () => {
    for (const name of ['p3-bgr', 'p4-bgr', 'p5-bgr', 'p5-readonly-bgr', 'p4-slice-bgr']) {
      const pickle = pickleOf(name);
      const image = decodeArrayPickle(pickle);
      const first = image.data[0] as number;
      pickle.fill(0xee); // the view sees it
      expect(image.data[0]).toBe(0xee);
      expect(first).toBe(Buffer.from(fixture(name).pixels, 'hex')[0]);
    }
  });

  it('returns a fresh C-order buffer for Fortran order and for protocol 2 text', () => {
    for (const name of ['p4-fortran-bgr', 'p5-fortran-bgr', 'p2-fortran-gray', 'p2-bgr']) {
      const pickle = pickleOf(name);
      const image = decodeArrayPickle(pickle);
      pickle.fill(0xee); // a fresh buffer does not see it
      expect(image.data.toString('hex')).toBe(fixture(name).pixels);
    }
  });

  it('transposes Fortran order to C order for images taller than one band of rows', () => {
    for (const [height, width, channels] of [[70, 3, 3], [33, 5, 1], [64, 2, 4]] as const) {
      const cOrder = Buffer.from(Array.from({ length: height * width * channels }, (_, i) => (i * 29 + (i >> 8)) & 0xff));
      const fortran = Buffer.alloc(cOrder.length);
      for (let h = 0; h < height; h++) {
        for (let w = 0; w < width; w++) {
          for (let c = 0; c < channels; c++) fortran[h + height * (w + width * c)] = cOrder[(h * width + w) * channels + c] as number;
        }
      }
      const image = decodeArrayPickle(arrayPickle({ shape: [height, width, channels], data: pixelBytes(fortran), fortran: true }));
      expect(image).toMatchObject({ width, height, channels, order: 'F' });
      expect(image.data.equals(cOrder)).toBe(true);
    }
  });

  it('decodes pickles made by hand the way numpy lays them out (no FRAME, no memo)', () => {
    const image = decodeArrayPickle(arrayPickle({ shape: [4, 5, 3], data: pixelBytes(bgr4x5) }));
    expect(image).toMatchObject({ width: 5, height: 4, channels: 3, order: 'C' });
    expect(image.data.equals(bgr4x5)).toBe(true);
  });
});

describe('decodeArrayPickle: code execution and other globals are refused, never run', () => {
  const callWith = (callable: Buffer, argument: string): Buffer =>
    bytes(proto(4), callable, shortStr(argument), Op.TUPLE1, Op.REDUCE, Op.STOP);

  it.each([
    ['builtins', 'eval'],
    ['builtins', 'exec'],
    ['builtins', 'getattr'],
    ['os', 'system'],
    ['posix', 'system'],
    ['subprocess', 'Popen'],
    ['numpy', 'load'],
    ['numpy.core', 'multiarray._reconstruct'],
    ['numpy.core.multiarray', '_reconstruct.__globals__'],
  ])('refuses %s.%s named by STACK_GLOBAL or GLOBAL, before any REDUCE', (module, name) => {
    const viaStack = refusal(callWith(stackGlobal(module, name), 'print(1)'));
    expect(viaStack.code).toBe('ERR_NOT_ALLOWED');
    expect(viaStack.message).toBe(
      `pickle opcode 0x93 STACK_GLOBAL at byte ${6 + module.length + name.length} on ${module}.${name} is not allowed: only numpy array pickles are accepted`,
    );
    const viaText = refusal(bytes(proto(2), global(module, name), binUnicode('print(1)'), Op.TUPLE1, Op.REDUCE, Op.STOP));
    expect(viaText.code).toBe('ERR_NOT_ALLOWED');
    expect(viaText.message).toBe(`pickle opcode 0x63 GLOBAL at byte 2 on ${module}.${name} is not allowed: only numpy array pickles are accepted`);
  });

  it('refuses REDUCE on an allowed class that is not a function numpy calls (numpy.ndarray)', () => {
    const error = refusal(bytes(proto(4), stackGlobal('numpy', 'ndarray'), int(3), Op.TUPLE1, Op.REDUCE, Op.STOP));
    expect(error.code).toBe('ERR_NOT_ALLOWED');
    expect(error.message).toBe('pickle opcode 0x52 REDUCE at byte 22 on numpy.ndarray is not allowed: only numpy array pickles are accepted');
  });

  it('refuses REDUCE on data and BUILD on anything but a fresh dtype or array', () => {
    expect(refusal(bytes(proto(4), int(1), int(2), Op.TUPLE1, Op.REDUCE, Op.STOP)).code).toBe('ERR_NOT_ALLOWED');
    const buildOnInt = refusal(bytes(proto(4), int(1), int(2), Op.BUILD, Op.STOP));
    expect(buildOnInt.code).toBe('ERR_NOT_ALLOWED');
    expect(buildOnInt.message).toContain('0x62 BUILD at byte 6 on the int 1 is not allowed');
    // A second BUILD on an array that already has its state (numpy would replace it).
    const built = arrayPickle({ shape: [4, 5, 3], data: pixelBytes(bgr4x5) });
    const twice = Buffer.concat([built.subarray(0, built.length - 1), bytes(int(1), Op.TUPLE1, Op.BUILD, Op.STOP)]);
    expect(refusal(twice)).toMatchObject({ code: 'ERR_NOT_ALLOWED', message: expect.stringContaining('BUILD at byte 189 on a numpy.ndarray is not allowed') });
  });

  it('names globals with hostile bytes briefly and escaped', () => {
    const longName = 'x'.repeat(10_000);
    const error = refusal(bytes(proto(4), bytes(Op.BINUNICODE, u32(longName.length), Buffer.from(longName)), shortStr('sys\n\x1b[2J'), Op.STACK_GLOBAL, Op.STOP));
    expect(error.code).toBe('ERR_NOT_ALLOWED');
    expect(error.message).toContain(`${'x'.repeat(64)}... (10000 bytes).sys\\x0a\\x1b[2J`);
    expect(error.message.length).toBeLessThan(300);
    const line = refusal(bytes(proto(2), Op.GLOBAL, Buffer.from('y'.repeat(5000)), 0x0a, Buffer.from('z\n'), Op.STOP));
    expect(line.code).toBe('ERR_NOT_ALLOWED');
    expect(line.message.length).toBeLessThan(300);
  });
});

describe('decodeArrayPickle: arrays that are not accepted images', () => {
  it('refuses dtypes other than uint8 at the dtype call, quoting the dtype briefly', () => {
    for (const typeString of ['f4', 'i2', '<u2', 'O', 'u1 ', 'U8']) {
      const error = refusal(arrayPickle({ shape: [4, 5, 3], data: pixelBytes(bgr4x5), typeString }));
      expect(error.code).toBe('ERR_UNSUPPORTED_ARRAY');
      expect(error.message).toContain(`dtype '${typeString}' is not accepted, only uint8 ('u1')`);
    }
    expect(refusal(arrayPickle({ shape: [4, 5, 3], data: pixelBytes(bgr4x5), typeString: 'u'.repeat(400) })).message.length).toBeLessThan(200);
  });

  it("refuses a uint8 dtype whose state is not numpy's", () => {
    const wrongOrder = Buffer.from(arrayPickle({ shape: [4, 5, 3], data: pixelBytes(bgr4x5) }).toString('latin1').replace('\x8c\x01|', '\x8c\x01<'), 'latin1');
    const error = refusal(wrongOrder);
    expect(error.code).toBe('ERR_UNSUPPORTED_ARRAY');
    expect(error.message).toContain("(3, '|', None, None, None, -1, -1, 0)");
  });

  it('refuses a shape that lies about the data length', () => {
    for (const shape of [[4, 6, 3], [4, 5, 1], [3, 5, 3], [4, 5, 4], [60, 1, 1]]) {
      const data = shape[0] === 60 ? pixelBytes(bgr4x5.subarray(0, 59)) : pixelBytes(bgr4x5);
      const error = refusal(arrayPickle({ shape, data }));
      expect(error.code).toBe('ERR_LENGTH_MISMATCH');
      expect(error.message).toMatch(/shape \([\d, ]+\) needs \d+ bytes but the data has (60|59)/);
    }
  });

  it('refuses images over the size limit from their shape, before allocating', () => {
    const pickle = pickleOf('p4-fortran-bgr'); // Fortran: accepting it would allocate
    expect(decodeArrayPickle(pickle, { maxSize: { width: 5, height: 4 } }).width).toBe(5);
    for (const maxSize of [{ width: 4, height: 4 }, { width: 5, height: 3 }]) {
      const error = withAllocations(() => refusal(pickle, { maxSize }));
      expect(error.result.code).toBe('ERR_TOO_LARGE');
      expect(error.result.message).toContain(`a 5x4 image is larger than the limit of ${maxSize.width}x${maxSize.height}`);
      expect(error.allocated).toEqual([]);
    }
  });

  it('refuses huge declared lengths and numbers from the length itself (no allocation)', () => {
    const twoTo63 = 2n ** 63n;
    const cases: [string, Buffer, string][] = [
      ['BINBYTES8 of 2^63', bytes(proto(4), Op.BINBYTES8, u64(twoTo63), Op.STOP), `announces ${twoTo63} bytes`],
      ['BYTEARRAY8 of 2^63', bytes(proto(5), Op.BYTEARRAY8, u64(twoTo63), Op.STOP), `announces ${twoTo63} bytes`],
      ['BINBYTES8 just over the limit', bytes(proto(4), Op.BINBYTES8, u64(7680 * 4320 * 4 + 1), Op.STOP), 'over the limit of 132710400'],
      ['BINBYTES of 4 GiB - 1', bytes(proto(4), Op.BINBYTES, u32(0xffffffff), Op.STOP), 'announces 4294967295 bytes'],
      ['BINUNICODE of 4 GiB - 1', bytes(proto(2), Op.BINUNICODE, u32(0xffffffff), Op.STOP), 'announces 4294967295 bytes'],
      ['FRAME of 2^63', bytes(proto(4), frame(twoTo63), Op.STOP), `announces ${twoTo63} bytes`],
      ['LONG1 of 9 bytes', bytes(proto(4), Op.LONG1, 9, Buffer.alloc(9, 0x7f), Op.STOP), '9-byte integer'],
      ['LONG1 of 2^60', bytes(proto(4), long1(2n ** 60n), Op.STOP), `the integer ${2n ** 60n}`],
    ];
    for (const [what, pickle, mentions] of cases) {
      const { result, allocated } = withAllocations(() => refusal(pickle));
      expect({ what, code: result.code }).toEqual({ what, code: 'ERR_TOO_LARGE' });
      expect(result.message).toContain(mentions);
      expect(allocated).toEqual([]);
    }
  });

  it('refuses a LONG shape of 10^12 from the shape, before allocating', () => {
    const pickle = arrayPickle({ shape: [1, 5, 3], data: pixelBytes(bgr4x5.subarray(0, 15)), fortran: true });
    const huge = Buffer.from(pickle.toString('latin1').replace('\x4b\x01\x4b\x05\x4b\x03\x87', `${long1(10n ** 12n).toString('latin1')}\x4b\x05\x4b\x03\x87`), 'latin1');
    expect(huge.length).toBeGreaterThan(pickle.length);
    const { result, allocated } = withAllocations(() => refusal(huge));
    expect(result.code).toBe('ERR_TOO_LARGE');
    expect(result.message).toContain('a 5x1000000000000 image is larger than the limit');
    expect(allocated).toEqual([]);
  });

  it('refuses negative and zero dimensions and non-int shapes', () => {
    expect(refusal(arrayPickle({ shape: [-4, -5, 3], data: pixelBytes(bgr4x5) })).message).toContain('shape (-4, -5, 3) has no pixels');
    const floatShape = bytes(proto(4), stackGlobal('numpy.core.numeric', '_frombuffer'), Op.MARK, pixelBytes(bgr4x5), uint8Dtype(),
      int(4), Op.NONE, int(3), Op.TUPLE3, shortStr('C'), Op.TUPLE, Op.REDUCE, Op.STOP);
    expect(refusal(floatShape)).toMatchObject({ code: 'ERR_MALFORMED', message: expect.stringContaining('not a tuple of ints') });
  });

  it("refuses _frombuffer orders other than 'C' and 'F'", () => {
    const withOrder = (order: string): Buffer => bytes(proto(5), stackGlobal('numpy.core.numeric', '_frombuffer'), Op.MARK, pixelBytes(bgr4x5), uint8Dtype(),
      int(4), int(5), int(3), Op.TUPLE3, shortStr(order), Op.TUPLE, Op.REDUCE, Op.STOP);
    expect(decodeArrayPickle(withOrder('C')).data.equals(bgr4x5)).toBe(true);
    expect(decodeArrayPickle(withOrder('F')).order).toBe('F');
    expect(refusal(withOrder('A'))).toMatchObject({ code: 'ERR_UNSUPPORTED_ARRAY', message: expect.stringContaining("order 'A' is not accepted") });
  });
});

describe('decodeArrayPickle: malformed pickles', () => {
  it('refuses an empty pickle', () => {
    expect(refusal(Buffer.alloc(0))).toMatchObject({ code: 'ERR_TRUNCATED', message: expect.stringContaining('empty') });
  });

  it.each(['p2-bgr', 'p3-bgr', 'p4-bgr', 'p5-bgr', 'p4-fortran-gray-numpy2', 'p5-readonly-bgr'])('refuses %s truncated at every offset', (name) => {
    const pickle = pickleOf(name);
    for (let length = 0; length < pickle.length; length++) {
      const error = refusal(Buffer.from(pickle.subarray(0, length)));
      expect({ length, code: error.code }).toEqual({ length, code: 'ERR_TRUNCATED' });
    }
  });

  it('refuses bytes after STOP', () => {
    const pickle = pickleOf('p4-bgr');
    for (const extra of [bytes(Op.STOP), bytes(0), pickle]) {
      const error = refusal(Buffer.concat([pickle, extra]));
      expect(error.code).toBe('ERR_MALFORMED');
      expect(error.message).toContain(`${extra.length} bytes after STOP`);
    }
  });

  it('refuses two values at STOP, and a STOP that is not an array', () => {
    const one = arrayPickle({ shape: [4, 5, 3], data: pixelBytes(bgr4x5) });
    const two = Buffer.concat([one.subarray(0, one.length - 1), bytes(Op.NONE, Op.STOP)]);
    expect(refusal(two)).toMatchObject({ code: 'ERR_MALFORMED', message: expect.stringContaining('2 values on the stack') });
    expect(refusal(bytes(proto(4), Op.NONE, Op.STOP))).toMatchObject({ code: 'ERR_UNSUPPORTED_ARRAY', message: 'the pickle holds None, not a numpy array' });
    expect(refusal(bytes(proto(4), Op.STOP))).toMatchObject({ code: 'ERR_MALFORMED', message: expect.stringContaining('0 values') });
    const unbuilt = bytes(proto(4), stackGlobal('numpy.core.multiarray', '_reconstruct'), stackGlobal('numpy', 'ndarray'), int(0), Op.TUPLE1,
      Op.SHORT_BINBYTES, 1, 0x62, Op.TUPLE3, Op.REDUCE, Op.STOP);
    expect(refusal(unbuilt)).toMatchObject({ code: 'ERR_MALFORMED', message: expect.stringContaining('no BUILD') });
  });

  it('refuses every opcode that is not on the list, naming it, its byte and its offset', () => {
    const refusedOpcodes = Array.from({ length: 256 }, (_, byte) => byte).filter((byte) => !ACCEPTED_OPCODES.has(byte));
    expect(refusedOpcodes).toHaveLength(256 - 28);
    for (const byte of refusedOpcodes) {
      const error = refusal(bytes(proto(5), int(1), byte, 0, 0, 0, 0, 0, 0, 0, 0, Op.STOP));
      const hex = `0x${byte.toString(16).padStart(2, '0')}`;
      const name = OPCODE_NAMES.get(byte) ?? '(not a pickle opcode)';
      expect({ byte, code: error.code, message: error.message }).toEqual({
        byte,
        code: 'ERR_NOT_ALLOWED',
        message: `pickle opcode ${hex} ${name} at byte 4 is not allowed: only numpy array pickles are accepted`,
      });
    }
    // Out-of-band buffers, sets, dicts, lists, persistent ids, extensions, object creation: all refused.
    for (const name of ['NEXT_BUFFER', 'READONLY_BUFFER', 'EMPTY_SET', 'EMPTY_DICT', 'EMPTY_LIST', 'PERSID', 'EXT1', 'NEWOBJ', 'INST', 'OBJ', 'POP', 'DUP']) {
      expect(refusedOpcodes.map((byte) => OPCODE_NAMES.get(byte))).toContain(name);
    }
  });

  it('refuses a pickle that does not start with PROTO 2 to 5, and PROTO later on', () => {
    expect(refusal(bytes(Op.NONE, Op.STOP)).message).toBe('pickle starts with opcode 0x4e NONE, not PROTO: only protocol 2 to 5 pickles are accepted');
    for (const protocol of [0, 1, 6, 255]) {
      expect(refusal(bytes(proto(protocol), Op.NONE, Op.STOP)).message).toContain(`protocol ${protocol} is not accepted, only 2 to 5`);
    }
    expect(refusal(bytes(proto(4), proto(4), Op.STOP))).toMatchObject({ code: 'ERR_MALFORMED', message: expect.stringContaining('only accepted as the first opcode') });
  });

  it('refuses opcodes newer than the protocol the pickle declares', () => {
    const cases: [number, Buffer, string][] = [
      [2, bytes(Op.SHORT_BINBYTES, 1, 0x62), '0x43 SHORT_BINBYTES at byte 2 is not allowed in a protocol 2 pickle (Python writes it from protocol 3 on)'],
      [3, shortStr('u1'), '0x8c SHORT_BINUNICODE at byte 2 is not allowed in a protocol 3 pickle (Python writes it from protocol 4 on)'],
      [3, frame(1), '0x95 FRAME'],
      [4, bytes(Op.BYTEARRAY8, u64(0)), '0x96 BYTEARRAY8 at byte 2 is not allowed in a protocol 4 pickle'],
    ];
    for (const [protocol, op, message] of cases) {
      expect(refusal(bytes(proto(protocol), op, Op.STOP))).toMatchObject({ code: 'ERR_NOT_ALLOWED', message: expect.stringContaining(message) });
    }
  });

  it('refuses stack underflow, including popping across a MARK', () => {
    for (const pickle of [
      bytes(proto(4), Op.TUPLE1, Op.STOP),
      bytes(proto(4), int(1), Op.MARK, Op.TUPLE2, Op.STOP),
      bytes(proto(4), Op.REDUCE, Op.STOP),
      bytes(proto(4), Op.TUPLE, Op.STOP),
      bytes(proto(4), Op.MEMOIZE, Op.STOP),
      bytes(proto(4), Op.BINGET, 0, Op.STOP),
    ]) {
      expect(refusal(pickle).code).toBe('ERR_MALFORMED');
    }
  });

  it('keeps the stack, the marks, the memo and tuple nesting small', () => {
    expect(refusal(bytes(proto(4), ...Array<number>(33).fill(Op.NONE), Op.STOP)).message).toContain('more than 32 values on the stack');
    expect(refusal(bytes(proto(4), ...Array<number>(5).fill(Op.MARK), Op.STOP)).message).toContain('more than 4 open MARKs');
    expect(refusal(bytes(proto(4), Op.NONE, ...Array<number>(65).fill(Op.MEMOIZE), Op.STOP)).message).toContain('more than 64 memo entries');
    expect(refusal(bytes(proto(4), Op.NONE, ...Array<number>(100_000).fill(Op.TUPLE1), Op.STOP)).message).toContain('tuples nested more than 3 deep');
  });

  it('refuses an opcode that runs past the end of its FRAME, and a FRAME inside a FRAME', () => {
    expect(refusal(bytes(proto(4), frame(2), shortStr('u1'), Op.STOP)).message).toContain('runs past the end of its FRAME at byte 13');
    expect(refusal(bytes(proto(4), frame(10), frame(0), Op.STOP))).toMatchObject({ code: 'ERR_MALFORMED', message: expect.stringContaining('starts a frame before') });
    expect(refusal(bytes(proto(4), frame(40), Op.STOP))).toMatchObject({ code: 'ERR_TRUNCATED', message: expect.stringContaining('announces 40 bytes but only 1 follow') });
  });

  it("refuses protocol 2 text that is not latin-1 in UTF-8, and encodings other than 'latin1'", () => {
    const textPickle = (text: Buffer, encoding = 'latin1'): Buffer => bytes(
      proto(2), global('numpy.core.multiarray', '_reconstruct'), global('numpy', 'ndarray'), int(0), Op.TUPLE1,
      global('_codecs', 'encode'), binUnicode('b'), binUnicode('latin1'), Op.TUPLE2, Op.REDUCE, Op.TUPLE3, Op.REDUCE,
      Op.MARK, int(1), int(1), int(2), Op.TUPLE2, uint8DtypeP2(), Op.NEWFALSE,
      global('_codecs', 'encode'), binUnicode(text), binUnicode(encoding), Op.TUPLE2, Op.REDUCE, Op.TUPLE, Op.BUILD, Op.STOP,
    );
    expect(decodeArrayPickle(textPickle(Buffer.from('\u00ff\u0041', 'utf8'))).data).toEqual(Buffer.from([0xff, 0x41]));
    for (const bad of [Buffer.from('\u0100A', 'utf8'), Buffer.from([0xc3]), Buffer.from([0xc3, 0x41]), Buffer.from([0xc0, 0x81]), Buffer.from([0x80, 0x41])]) {
      expect(refusal(textPickle(bad))).toMatchObject({ code: 'ERR_MALFORMED', message: expect.stringContaining('not UTF-8 for a character up to U+00FF') });
    }
    expect(refusal(textPickle(Buffer.from('AB'), 'utf-8')).message).toContain("not (str, 'latin1')");
  });

  it('refuses more calls than numpy makes, so a memoized text cannot be scanned again and again', () => {
    // Each encode call scans its text: 8 calls on one memoized text are allowed, a 9th is refused.
    const encodeAgain = bytes(Op.BINGET, 0, Op.BINGET, 1, Op.BINGET, 2, Op.TUPLE2, Op.REDUCE);
    const calls = (count: number): Buffer => bytes(
      proto(2), Op.MARK, global('_codecs', 'encode'), Op.BINPUT, 0, binUnicode('\u00e9'.repeat(1000)), Op.BINPUT, 1, binUnicode('latin1'), Op.BINPUT, 2,
      Op.TUPLE2, Op.REDUCE, ...Array<Buffer>(count - 1).fill(encodeAgain), Op.TUPLE, Op.STOP,
    );
    expect(refusal(calls(8))).toMatchObject({ code: 'ERR_UNSUPPORTED_ARRAY', message: expect.stringContaining('the pickle holds a tuple of 8 values') });
    expect(refusal(calls(9))).toMatchObject({ code: 'ERR_MALFORMED', message: 'pickle opcode 0x52 REDUCE at byte 2106: more than 8 calls' });
  });

  it('refuses calls to allowed functions with arguments numpy never writes', () => {
    const reconstructWith = (...args: Buffer[]): Buffer => bytes(proto(4), stackGlobal('numpy.core.multiarray', '_reconstruct'), Op.MARK, ...args, Op.TUPLE, Op.REDUCE, Op.STOP);
    const ndarray = stackGlobal('numpy', 'ndarray');
    const zero = bytes(int(0), Op.TUPLE1);
    const b = bytes(Op.SHORT_BINBYTES, 1, 0x62);
    for (const pickle of [
      reconstructWith(ndarray, zero),
      reconstructWith(stackGlobal('numpy', 'dtype'), zero, b),
      reconstructWith(ndarray, bytes(int(1), Op.TUPLE1), b),
      reconstructWith(ndarray, zero, bytes(Op.SHORT_BINBYTES, 1, 0x42)),
      bytes(proto(4), stackGlobal('numpy', 'dtype'), shortStr('u1'), Op.NEWTRUE, Op.NEWTRUE, Op.TUPLE3, Op.REDUCE, Op.STOP),
      bytes(proto(4), stackGlobal('numpy', 'dtype'), shortStr('u1'), Op.REDUCE, Op.STOP),
    ]) {
      expect(refusal(pickle)).toMatchObject({ code: 'ERR_MALFORMED', message: expect.stringMatching(/is called with|not a tuple/) });
    }
  });
});

/** protocol 2's dtype: GLOBAL and BINUNICODE instead of STACK_GLOBAL and SHORT_BINUNICODE. */
function uint8DtypeP2(): Buffer {
  return bytes(
    global('numpy', 'dtype'), binUnicode('u1'), Op.NEWFALSE, Op.NEWTRUE, Op.TUPLE3, Op.REDUCE,
    Op.MARK, int(3), binUnicode('|'), Op.NONE, Op.NONE, Op.NONE, int(-1), int(-1), int(0), Op.TUPLE, Op.BUILD,
  );
}

/** Runs fn, recording the sizes of the Buffers allocated meanwhile. */
function withAllocations<T>(fn: () => T): { result: T; allocated: number[] } {
  const allocated: number[] = [];
  const spies = (['alloc', 'allocUnsafe', 'allocUnsafeSlow'] as const).map((method) => {
    const original = Buffer[method].bind(Buffer) as (size: number, ...rest: unknown[]) => Buffer;
    return jest.spyOn(Buffer, method).mockImplementation(((size: number, ...rest: unknown[]) => {
      allocated.push(size);
      return original(size, ...rest);
    }) as never);
  });
  try {
    return { result: fn(), allocated };
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
}
