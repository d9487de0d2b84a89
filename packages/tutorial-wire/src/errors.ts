/**
 * One class per way a peer's bytes can be wrong. Each carries a stable `code` (what tests and
 * callers branch on) and a message that names the problem, the offset and the numbers involved.
 * Messages quote peer data only through `quoteBytes`, so they stay short whatever a peer sends.
 */
export type TutorialWireErrorCode =
  | 'ERR_NOT_ALLOWED'
  | 'ERR_UNSUPPORTED_ARRAY'
  | 'ERR_TOO_LARGE'
  | 'ERR_LENGTH_MISMATCH'
  | 'ERR_TRUNCATED'
  | 'ERR_MALFORMED';

export interface TutorialWireErrorOptions {
  cause?: unknown;
}

export class TutorialWireError extends Error {
  readonly code: TutorialWireErrorCode;

  constructor(code: TutorialWireErrorCode, message: string, options?: TutorialWireErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** An opcode, a global, or a call that only a general unpickler would run: refused, never run. */
export class NotAllowedError extends TutorialWireError {
  constructor(message: string, options?: TutorialWireErrorOptions) {
    super('ERR_NOT_ALLOWED', message, options);
  }
}

/** A numpy array, but not an image this package accepts (dtype, number of dimensions, channels). */
export class UnsupportedArrayError extends TutorialWireError {
  constructor(message: string, options?: TutorialWireErrorOptions) {
    super('ERR_UNSUPPORTED_ARRAY', message, options);
  }
}

/** A length or a dimension above the configured limit, refused before anything is allocated for it. */
export class TooLargeError extends TutorialWireError {
  constructor(message: string, options?: TutorialWireErrorOptions) {
    super('ERR_TOO_LARGE', message, options);
  }
}

/** The array's shape and the length of its data disagree. */
export class LengthMismatchError extends TutorialWireError {
  constructor(message: string, options?: TutorialWireErrorOptions) {
    super('ERR_LENGTH_MISMATCH', message, options);
  }
}

/** The bytes end before the pickle (or the stream's frame) does. */
export class TruncatedError extends TutorialWireError {
  constructor(message: string, options?: TutorialWireErrorOptions) {
    super('ERR_TRUNCATED', message, options);
  }
}

/** Opcodes in an order or with arguments no numpy array pickle has (stack underflow, bad text, bytes after STOP...). */
export class MalformedPickleError extends TutorialWireError {
  constructor(message: string, options?: TutorialWireErrorOptions) {
    super('ERR_MALFORMED', message, options);
  }
}

/**
 * Peer bytes as short printable text: printable ASCII as it is (but ' and \\), anything
 * else as \xNN, cut at `max` bytes with an ellipsis and the full length.
 */
export function printableBytes(bytes: Uint8Array, max = 48): string {
  let text = '';
  const shown = Math.min(bytes.length, max);
  for (let i = 0; i < shown; i++) {
    const byte = bytes[i] as number;
    const plain = byte >= 0x20 && byte < 0x7f && byte !== 0x27 && byte !== 0x5c;
    text += plain ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return bytes.length > max ? `${text}... (${bytes.length} bytes)` : text;
}

/** printableBytes in single quotes, for values (a dtype string, an order). */
export function quoteBytes(bytes: Uint8Array, max = 48): string {
  return `'${printableBytes(bytes, max)}'`;
}
