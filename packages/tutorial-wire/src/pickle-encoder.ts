import { LENGTH_PREFIX_BYTES } from './limits';
import { Op } from './opcodes';

/** An OpenCV frame as the tutorial sends it: uint8, shape (height, width, 3), BGR, C order. */
export interface BgrImage {
  width: number;
  height: number;
  /** height x width x 3 bytes, rows top to bottom, B G R per pixel. */
  data: Buffer;
}

/**
 * One frame of the tutorial's wire, in three parts to write in order (inside cork()/uncork()):
 * the 8-byte length and the pickle opcodes before the pixels, the caller's pixel buffer itself
 * (not copied), and the opcodes after it.
 */
export interface TutorialFrameParts {
  head: Buffer;
  pixels: Buffer;
  tail: Buffer;
  /** head + pixels + tail: the bytes this frame puts on the wire. */
  byteLength: number;
}

/**
 * CPython's pickler writes bytes of 64 KiB or more outside any frame (and, before saving another
 * object, ends a frame that holds 64 KiB: no object follows the pixels here).
 */
const FRAME_SIZE_TARGET = 64 * 1024;
/** After the pixels: MEMOIZE (the bytes), TUPLE (the state) MEMOIZE, BUILD, STOP. */
const AFTER_PIXELS = [Op.MEMOIZE, Op.TUPLE, Op.MEMOIZE, Op.BUILD, Op.STOP];
const MAX_BINBYTES_LENGTH = 0xffffffff;

/**
 * Frames `image` as `struct.pack("Q", len(a)) + a` with `a = pickle.dumps(image)`, byte for byte
 * what Python 3.8+ with numpy 1.x writes by default (protocol 4, numpy.core.multiarray._reconstruct,
 * which numpy 1 and numpy 2 both load), so the tutorial's receiver reads it with pickle.loads.
 */
export function encodeTutorialFrame(image: BgrImage): TutorialFrameParts {
  const { width, height, data } = image;
  for (const [name, value] of [['width', width], ['height', height]] as const) {
    if (!Number.isSafeInteger(value) || value < 1 || value > 0x7fffffff) {
      throw new RangeError(`${name} must be an integer from 1 to 2^31-1, got ${value}`);
    }
  }
  const pixelBytes = width * height * 3;
  if (data.length !== pixelBytes) {
    throw new RangeError(`a ${width}x${height} BGR image has ${pixelBytes} bytes, but the buffer has ${data.length}`);
  }
  if (pixelBytes > MAX_BINBYTES_LENGTH) throw new RangeError(`a ${pixelBytes}-byte image is too large to pickle as BINBYTES`);

  const before = opcodesBeforePixels(height, width);
  const pixelsHeader = pixelBytes <= 0xff ? [Op.SHORT_BINBYTES, pixelBytes] : [Op.BINBYTES, ...uint32LE(pixelBytes)];
  let head: number[];
  let tail: number[];
  if (pixelBytes >= FRAME_SIZE_TARGET) {
    // Large bytes go outside any frame: the frame ends before their opcode; a new one holds the rest.
    head = [...frame(before.length), ...before, ...pixelsHeader];
    tail = [...frame(AFTER_PIXELS.length), ...AFTER_PIXELS];
  } else {
    // One frame holds everything: the pickler only ends a frame before saving another object.
    head = [...frame(before.length + pixelsHeader.length + pixelBytes + AFTER_PIXELS.length), ...before, ...pixelsHeader];
    tail = AFTER_PIXELS;
  }
  const pickleLength = 2 + head.length + pixelBytes + tail.length; // 2: PROTO 4
  const headBuffer = Buffer.allocUnsafe(LENGTH_PREFIX_BYTES + 2 + head.length);
  headBuffer.writeBigUInt64LE(BigInt(pickleLength), 0);
  headBuffer[LENGTH_PREFIX_BYTES] = Op.PROTO;
  headBuffer[LENGTH_PREFIX_BYTES + 1] = 4;
  headBuffer.set(head, LENGTH_PREFIX_BYTES + 2);
  const tailBuffer = Buffer.from(tail);
  return { head: headBuffer, pixels: data, tail: tailBuffer, byteLength: headBuffer.length + pixelBytes + tailBuffer.length };
}

/** The opcodes numpy's ndarray.__reduce__ makes the pickler write before the pixel bytes' opcode. */
function opcodesBeforePixels(height: number, width: number): number[] {
  const M = Op.MEMOIZE;
  return [
    ...shortText('numpy.core.multiarray'), M, // memo 0
    ...shortText('_reconstruct'), M, // memo 1
    Op.STACK_GLOBAL, M, // memo 2: _reconstruct
    ...shortText('numpy'), M, // memo 3, fetched again for dtype
    ...shortText('ndarray'), M, // memo 4
    Op.STACK_GLOBAL, M, // memo 5: numpy.ndarray
    Op.BININT1, 0, Op.TUPLE1, M, // (0,)
    Op.SHORT_BINBYTES, 1, 0x62, M, // b'b'
    Op.TUPLE3, M, Op.REDUCE, M, // _reconstruct(numpy.ndarray, (0,), b'b')
    Op.MARK, Op.BININT1, 1, // state: (1,
    ...int(height), ...int(width), Op.BININT1, 3, Op.TUPLE3, M, //   (height, width, 3),
    Op.BINGET, 3, ...shortText('dtype'), M, Op.STACK_GLOBAL, M, //   numpy.dtype
    ...shortText('u1'), M, Op.NEWFALSE, Op.NEWTRUE, Op.TUPLE3, M, Op.REDUCE, M, //   ('u1', False, True)
    Op.MARK, Op.BININT1, 3, ...shortText('|'), M, Op.NONE, Op.NONE, Op.NONE, //   with state (3, '|', None, None, None,
    Op.BININT, 0xff, 0xff, 0xff, 0xff, Op.BININT, 0xff, 0xff, 0xff, 0xff, Op.BININT1, 0, Op.TUPLE, M, Op.BUILD, //   -1, -1, 0),
    Op.NEWFALSE, //   is_fortran False, then the pixel bytes)
  ];
}

function shortText(ascii: string): number[] {
  return [Op.SHORT_BINUNICODE, ascii.length, ...Buffer.from(ascii, 'latin1')];
}

/** As CPython's save_long: the shortest of BININT1, BININT2, BININT. */
function int(value: number): number[] {
  if (value <= 0xff) return [Op.BININT1, value];
  if (value <= 0xffff) return [Op.BININT2, value & 0xff, value >> 8];
  return [Op.BININT, ...uint32LE(value)];
}

function frame(length: number): number[] {
  return [Op.FRAME, ...uint32LE(length), 0, 0, 0, 0];
}

function uint32LE(value: number): number[] {
  return [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, value >>> 24];
}
