import { ProtocolError, SessionError } from '@camstream/protocol';

/**
 * The peer's first bytes are not camstream framing at all (an HTTP or SSH server, say). Keeps the
 * decoder's code, which the `error` sent back carries; it is not counted as corrupt frames.
 */
export class NotASenderError extends ProtocolError {
  constructor(message: string, cause: ProtocolError) {
    super(cause.code, message, { cause });
  }
}

/** The sender's refusal (its `error` message), with its code. */
export class RefusedError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The tutorial's streamer sent bytes camstream refuses (a pickle that is no numpy image, a length
 * over the limit, a stream that ends inside a frame), or the peer does not speak that wire at all.
 * Nothing in a refused pickle was run. `final`: retrying cannot fix it (the same streamer sends the
 * same kind of pickle again); `corrupt`: the streamer's bytes were wrong (counted as corrupt).
 */
export class TutorialStreamError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly final: boolean,
    readonly corrupt: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Refusals from the sender that retrying cannot fix (PROTOCOL.md section 6). */
const FINAL_REFUSALS = new Set(['ERR_AUTH', 'ERR_VERSION', 'ERR_STREAM_TOO_LARGE']);

/**
 * Whether a connection that ended this way may succeed if tried again: not after a wrong secret or
 * an untrusted certificate (ERR_AUTH), a stream larger than accepted, or another protocol version,
 * whichever side found it.
 */
export function isFinal(error: Error): boolean {
  if (error instanceof TutorialStreamError) return error.final;
  if (error instanceof RefusedError) return FINAL_REFUSALS.has(error.code);
  if (error instanceof SessionError) return error.final;
  return error instanceof ProtocolError && error.code === 'ERR_VERSION';
}

/**
 * Whether the sender's bytes were wrong (counted as corrupt), rather than the network, the
 * sender's conduct in the handshake, or a peer that is no camstream sender at all.
 */
export function isCorruptBytes(error: Error): boolean {
  if (error instanceof TutorialStreamError) return error.corrupt;
  if (error instanceof NotASenderError) return false;
  if (error instanceof ProtocolError) return error.code !== 'ERR_VERSION';
  return error instanceof SessionError && (error.code === 'ERR_STREAM_MISMATCH' || error.code === 'ERR_OUT_OF_ORDER');
}
