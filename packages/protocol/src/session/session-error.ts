/**
 * Session-level failures (PROTOCOL.md section 6, second table): the bytes were well formed but the
 * conversation was not. Each has a stable code that the side that detects it sends in its `error`.
 */
export type SessionErrorCode =
  | 'ERR_FULL'
  | 'ERR_HANDSHAKE'
  | 'ERR_HANDSHAKE_TIMEOUT'
  | 'ERR_AUTH'
  | 'ERR_UNEXPECTED'
  | 'ERR_OUT_OF_ORDER'
  | 'ERR_STREAM_MISMATCH'
  | 'ERR_STREAM_TOO_LARGE'
  | 'ERR_STALLED';

export class SessionError extends Error {
  constructor(
    readonly code: SessionErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SessionError';
  }

  /** Retrying with the same settings cannot succeed: a wrong secret, a stream too large to accept. */
  get final(): boolean {
    return this.code === 'ERR_AUTH' || this.code === 'ERR_STREAM_TOO_LARGE';
  }
}
