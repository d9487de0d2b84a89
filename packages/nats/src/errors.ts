/** Stable codes of the NATS transport's errors: tests and apps branch on these, not on texts. */
export type NatsTransportErrorCode =
  /** The NATS URL (or the credentials around it) cannot be used. */
  | 'ERR_NATS_URL'
  /** A camera name that is not a valid subject token. */
  | 'ERR_CAMERA_NAME'
  /** The server refused the credentials (or none were given and it wants some). */
  | 'ERR_NATS_AUTH'
  /** No server could be reached (refused, timed out, unknown host). */
  | 'ERR_NATS_UNREACHABLE'
  /** The TLS handshake failed, or TLS was required on one side only. */
  | 'ERR_NATS_TLS'
  /** A creds or CA file could not be read. */
  | 'ERR_NATS_FILE'
  /** A message is larger than the server's max_payload. */
  | 'ERR_NATS_PAYLOAD'
  /** The connection is closed for good (closed by this side, or the server refused a reconnect). */
  | 'ERR_NATS_CLOSED';

/** Base class: every error of this package has a stable `code` and keeps its `cause`. */
export class NatsTransportError extends Error {
  constructor(
    readonly code: NatsTransportErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A camera name that NATS cannot carry as one subject token. */
export class CameraNameError extends NatsTransportError {
  constructor(message: string) {
    super('ERR_CAMERA_NAME', message);
  }
}

/** A message that the server would refuse for its size (max_payload). */
export class PayloadTooLargeError extends NatsTransportError {
  constructor(
    message: string,
    readonly bytes: number,
    readonly maxPayload: number,
  ) {
    super('ERR_NATS_PAYLOAD', message);
  }
}
