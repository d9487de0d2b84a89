/**
 * One class per way a peer's bytes can be wrong. Each carries a stable `code` (what tests and
 * callers branch on) and a message that names the problem and the numbers involved.
 */
export type ProtocolErrorCode =
  | 'ERR_TOO_LARGE'
  | 'ERR_BAD_HEADER'
  | 'ERR_SCHEMA'
  | 'ERR_LENGTH_MISMATCH'
  | 'ERR_CHECKSUM'
  | 'ERR_VERSION';

export interface ProtocolErrorOptions {
  cause?: unknown;
}

export class ProtocolError extends Error {
  readonly code: ProtocolErrorCode;

  constructor(code: ProtocolErrorCode, message: string, options?: ProtocolErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A message, header or payload is larger than a configured limit. */
export class TooLargeError extends ProtocolError {
  constructor(message: string, options?: ProtocolErrorOptions) {
    super('ERR_TOO_LARGE', message, options);
  }
}

/** The header bytes are not UTF-8 JSON. */
export class BadHeaderError extends ProtocolError {
  constructor(message: string, options?: ProtocolErrorOptions) {
    super('ERR_BAD_HEADER', message, options);
  }
}

/** The header is JSON but not a valid camstream header; `cause` is the zod error when there is one. */
export class SchemaError extends ProtocolError {
  constructor(message: string, options?: ProtocolErrorOptions) {
    super('ERR_SCHEMA', message, options);
  }
}

/** Two lengths that must agree do not (message, header, payload, or a raw frame's pixel size). */
export class LengthMismatchError extends ProtocolError {
  constructor(message: string, options?: ProtocolErrorOptions) {
    super('ERR_LENGTH_MISMATCH', message, options);
  }
}

/** A frame payload's CRC-32 differs from the one in its header. */
export class ChecksumError extends ProtocolError {
  constructor(message: string, options?: ProtocolErrorOptions) {
    super('ERR_CHECKSUM', message, options);
  }
}

/** A hello names another protocol or another version. */
export class VersionMismatchError extends ProtocolError {
  constructor(message: string, options?: ProtocolErrorOptions) {
    super('ERR_VERSION', message, options);
  }
}
