import net from 'node:net';
import tls from 'node:tls';
import {
  encodeMessage,
  MessageDecoder,
  newNonce,
  PROTOCOL_NAME,
  PROTOCOL_VERSION,
  proofsMatch,
  receiverProof,
  senderProof,
  TooLargeError,
  type FrameHeader,
  type Header,
  type Message,
  type StreamDescription,
} from '@camstream/protocol';

export interface SessionOptions {
  host: string;
  port: number;
  name: string;
  /** Gives up on a sender that accepts but never answers the hello. */
  handshakeTimeoutMs?: number;
  /** A connection with no bytes at all for this long is dead (the sender pings when idle). */
  idleTimeoutMs?: number;
  /** Shared secret: prove it to the sender and require the sender to prove it back. */
  secret?: string;
  /** Connect over TLS, trusting this CA (PEM) or exactly the certificate with this SHA-256 fingerprint. */
  tls?: { ca?: Buffer; fingerprint256?: string };
  /** The largest stream to accept (default DEFAULT_MAX_STREAM_SIZE): a larger one is refused in the handshake. */
  maxStreamSize?: StreamSize;
  /**
   * This sender already spoke camstream without TLS on an earlier connection: a close before its
   * hello then means it is going away (e.g. it said bye and is shutting down), not that it uses TLS.
   */
  spokePlainCamstream?: boolean;
  signal?: AbortSignal;
}

export interface StreamSize {
  width: number;
  height: number;
}

/**
 * 8K UHD. Decoding takes width * height * 3 bytes per frame in flight (100 MB at this size), so
 * a sender may not make a receiver allocate more than this unless the user allows it (--max-size).
 */
export const DEFAULT_MAX_STREAM_SIZE: StreamSize = { width: 7680, height: 4320 };

export interface SessionHandlers {
  onStream(stream: StreamDescription): void;
  /** Called for every frame; throw to end the session with that error. */
  onFrame(header: FrameHeader, payload: Buffer): void;
}

export type SessionEnd =
  | { kind: 'bye'; reason: string }
  | { kind: 'refused'; code: string; reason: string }
  | { kind: 'failed'; error: Error; connected: boolean }
  | { kind: 'stopped' };

export class StreamMismatchError extends Error {
  readonly code = 'ERR_STREAM_MISMATCH';
}

/** Authentication failed or was not what this receiver requires: retrying will not help. */
export class AuthError extends Error {
  readonly code = 'ERR_AUTH';
}

/** The sender announced a stream larger than this receiver accepts: retrying will not help until one of them changes. */
export class StreamTooLargeError extends Error {
  readonly code = 'ERR_STREAM_TOO_LARGE';
}

/**
 * The peer's first bytes are not camstream framing at all (an HTTP or SSH server, say). Keeps the
 * decoder's code, which the `error` sent back carries; it is not counted as corrupt frames.
 */
export class NotASenderError extends Error {
  readonly code: string;

  constructor(message: string, cause: Error & { code?: unknown }) {
    super(message, { cause });
    this.code = typeof cause.code === 'string' ? cause.code : 'ERR_UNEXPECTED';
  }
}

/** Decoder errors that mean the bytes do not even frame messages the camstream way. */
const FRAMING_ERRORS = new Set(['ERR_TOO_LARGE', 'ERR_LENGTH_MISMATCH', 'ERR_BAD_HEADER']);
/** How much of a stranger's first bytes to quote. */
const QUOTED_BYTES = 64;

/**
 * Before its hello a sender may only send a challenge and the hello: small, payload-free
 * messages (each at most the 12 bytes of lengths and a 64 KiB header).
 */
const MAX_BYTES_BEFORE_HELLO = 2 * (12 + 64 * 1024);

/** Compressed frames may exceed the raw size a little (PNG, JPEG of noise), never by this much. */
function frameLimit(stream: StreamDescription): number {
  const raw = stream.width * stream.height * 3;
  return stream.encoding === 'raw-bgr' ? raw : 2 * raw + 64 * 1024;
}

/**
 * One connection to a sender, from connect to close: hello both ways, then frames. Resolves
 * (never rejects) with how it ended, so the caller decides whether to reconnect.
 */
export function runSession(options: SessionOptions, handlers: SessionHandlers): Promise<SessionEnd> {
  return new Promise((resolve) => {
    const socket = connect(options);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    const idleMs = options.idleTimeoutMs ?? 10_000;
    socket.setTimeout(idleMs, () =>
      finish({ kind: 'failed', connected, error: new Error(`no data from the sender for ${idleMs % 1000 === 0 ? `${idleMs / 1000} s` : `${idleMs} ms`}: the connection is dead`) }),
    );
    const receiverNonce = newNonce();
    let senderNonce: string | undefined;
    let connected = false;
    let stream: StreamDescription | undefined;
    let settled: SessionEnd | undefined;
    const decoder = new MessageDecoder();
    /** The start of what the peer sent, kept until its first message is decoded, to quote a stranger's bytes. */
    let firstBytes: Buffer | undefined = Buffer.alloc(0);
    let bytesBeforeFirstMessage = 0;

    /** `farewell`: the last message to send before closing (bye when stopping, error when failing). */
    const finish = (end: SessionEnd, farewell?: Buffer) => {
      if (settled) return;
      settled = end;
      clearTimeout(handshakeTimer);
      options.signal?.removeEventListener('abort', onAbort);
      if (end.kind === 'stopped') farewell = encodeMessage({ type: 'bye', reason: 'receiver stopping' }).head;
      if (farewell && !socket.destroyed && connected) {
        socket.end(farewell);
        setTimeout(() => socket.destroy(), 500).unref();
      } else {
        socket.destroy();
      }
      resolve(end);
    };
    const onAbort = () => finish({ kind: 'stopped' });
    if (options.signal?.aborted) return finish({ kind: 'stopped' });
    options.signal?.addEventListener('abort', onAbort);

    const handshakeTimer = setTimeout(
      () => finish({ kind: 'failed', connected, error: new Error(`no hello from the sender within ${options.handshakeTimeoutMs ?? 5000} ms`) }),
      options.handshakeTimeoutMs ?? 5000,
    );

    socket.on(options.tls ? 'secureConnect' : 'connect', () => {
      if (options.tls?.fingerprint256) {
        const presented = (socket as tls.TLSSocket).getPeerCertificate().fingerprint256;
        if (normaliseFingerprint(presented) !== normaliseFingerprint(options.tls.fingerprint256)) {
          return finish({
            kind: 'failed',
            connected: true,
            error: new AuthError(`the sender's certificate fingerprint ${presented} is not the pinned ${options.tls.fingerprint256}`),
          });
        }
      }
      connected = true;
      socket.write(
        encodeMessage({
          type: 'hello',
          protocol: PROTOCOL_NAME,
          version: PROTOCOL_VERSION,
          role: 'receiver',
          name: options.name,
          ...(options.secret === undefined ? {} : { nonce: receiverNonce }),
        }).head,
      );
    });
    socket.on('error', (error) => finish({ kind: 'failed', connected, error: describeSocketError(error, options) }));
    socket.on('close', () => {
      const tlsHint = options.tls || options.spokePlainCamstream ? '' : ' (if it uses TLS, connect with --tls)';
      const where = decoder.midMessage ? ' in the middle of a message' : !stream ? ` before its hello${tlsHint}` : '';
      finish({ kind: 'failed', connected, error: new Error(`the sender closed the connection${where}`) });
    });
    const onMessage = ({ header, payload }: Message): void => {
      if (settled) return; // decode nothing more once the session is over
      firstBytes = undefined;
      if (header.type === 'error') return finish({ kind: 'refused', code: header.code, reason: header.reason });
      if (!stream) {
        if (header.type === 'challenge') {
          if (options.secret === undefined) throw new AuthError('the sender requires a shared secret (--secret or CAMSTREAM_SECRET)');
          senderNonce = header.nonce;
          socket.write(encodeMessage({ type: 'auth', mac: receiverProof(options.secret, senderNonce, receiverNonce) }).head);
          return;
        }
        stream = expectHello(header);
        if (options.secret !== undefined) {
          if (senderNonce === undefined || header.type !== 'hello' || header.role !== 'sender' || !header.proof) {
            throw new AuthError('the sender did not ask for the shared secret: refusing a sender that cannot prove it knows it');
          }
          if (!proofsMatch(senderProof(options.secret, senderNonce, receiverNonce), header.proof)) {
            throw new AuthError("the sender's proof of the shared secret is wrong: not the expected sender");
          }
        }
        // After authentication, so that an impostor is reported as one, whatever it announces.
        checkStreamSize(stream, options.maxStreamSize ?? DEFAULT_MAX_STREAM_SIZE);
        clearTimeout(handshakeTimer);
        // Takes effect for the very next message, even one that arrived in the same chunk.
        decoder.limitFrameBytes(frameLimit(stream));
        handlers.onStream(stream);
        return;
      }
      switch (header.type) {
        case 'frame':
          checkAgainstStream(header, stream);
          handlers.onFrame(header, payload);
          return;
        case 'bye':
          return finish({ kind: 'bye', reason: header.reason });
        case 'ping':
          return;
        default:
          throw new Error(`unexpected '${header.type}' message from the sender`);
      }
    };
    socket.on('data', (chunk: Buffer) => {
      if (settled) return;
      if (firstBytes) {
        bytesBeforeFirstMessage += chunk.length;
        if (firstBytes.length < QUOTED_BYTES) firstBytes = Buffer.concat([firstBytes, chunk.subarray(0, QUOTED_BYTES - firstBytes.length)]);
      }
      try {
        try {
          decoder.push(chunk, onMessage);
        } catch (error) {
          // Framing that breaks before the first message: whatever answered is no camstream sender.
          const { code } = error as { code?: unknown };
          if (!firstBytes || typeof code !== 'string' || !FRAMING_ERRORS.has(code)) throw error;
          const quoted = quotePrintably(firstBytes, bytesBeforeFirstMessage > firstBytes.length);
          throw new NotASenderError(`the peer at ${options.host}:${options.port} is not a camstream sender: it sent ${quoted}`, error as Error);
        }
        if (!stream && decoder.bufferedBytes > MAX_BYTES_BEFORE_HELLO) {
          throw new TooLargeError(`the sender sent more than ${MAX_BYTES_BEFORE_HELLO} bytes before its hello`);
        }
      } catch (error) {
        // Tell the sender why before closing (PROTOCOL.md section 4, failure).
        const { message, code } = error as Error & { code?: unknown };
        const reason = encodeMessage({ type: 'error', code: typeof code === 'string' ? code : 'ERR_UNEXPECTED', reason: message.slice(0, 1000) }).head;
        finish({ kind: 'failed', connected, error: error as Error }, reason);
      }
    });
  });
}

function connect({ host, port, tls: trust }: SessionOptions): net.Socket {
  if (!trust) return net.connect({ host, port });
  return tls.connect({
    host,
    port,
    ...(net.isIP(host) ? {} : { servername: host }),
    minVersion: 'TLSv1.2',
    // A pinned fingerprint replaces CA validation; it is checked on secureConnect.
    ...(trust.fingerprint256 ? { rejectUnauthorized: false } : { ca: trust.ca, rejectUnauthorized: true }),
  });
}

function normaliseFingerprint(fingerprint: string): string {
  return fingerprint.replace(/:/g, '').toUpperCase();
}

function expectHello(header: Header): StreamDescription {
  if (header.type !== 'hello' || header.role !== 'sender' || !header.stream) {
    throw new Error(`expected a hello from a sender, got a '${header.type}' message`);
  }
  return header.stream;
}

function checkStreamSize(stream: StreamDescription, max: StreamSize): void {
  if (stream.width > max.width || stream.height > max.height) {
    throw new StreamTooLargeError(`the sender announced a ${stream.width}x${stream.height} stream, larger than this receiver accepts (${max.width}x${max.height}; see --max-size)`);
  }
}

/**
 * Bytes as a double-quoted string a person can read: printable ASCII as is, `\r` `\n` `\t` `\"`
 * `\\` escaped, anything else as `\xNN`; cut after the first line, with "..." when more followed.
 */
function quotePrintably(bytes: Buffer, more: boolean): string {
  const newline = bytes.indexOf(0x0a);
  const shown = newline >= 0 && newline < bytes.length - 1 ? bytes.subarray(0, newline + 1) : bytes;
  let text = '';
  for (const byte of shown) {
    if (byte === 0x0d) text += '\\r';
    else if (byte === 0x0a) text += '\\n';
    else if (byte === 0x09) text += '\\t';
    else if (byte === 0x22 || byte === 0x5c) text += `\\${String.fromCharCode(byte)}`;
    else if (byte >= 0x20 && byte < 0x7f) text += String.fromCharCode(byte);
    else text += `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return `"${text}${shown.length < bytes.length || more ? '...' : ''}"`;
}

/** A frame must be what the sender announced: a bigger one is refused, never buffered. */
function checkAgainstStream(header: FrameHeader, stream: StreamDescription): void {
  if (header.width !== stream.width || header.height !== stream.height || header.encoding !== stream.encoding) {
    throw new StreamMismatchError(
      `frame ${header.seq} is ${header.width}x${header.height} ${header.encoding}, but the stream was announced as ${stream.width}x${stream.height} ${stream.encoding}`,
    );
  }
}

function describeSocketError(error: NodeJS.ErrnoException, { host, port, tls: trust }: SessionOptions): Error {
  const where = `${host}:${port}`;
  if (trust && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/.test(error.code ?? '')) {
    return new AuthError(`the sender's TLS certificate is not trusted: ${error.message}`, { cause: error });
  }
  if (trust && /SSL|TLS/.test(error.code ?? '')) {
    return new Error(`TLS handshake with ${where} failed (is the sender using TLS?): ${error.message}`, { cause: error });
  }
  switch (error.code) {
    case 'ECONNREFUSED':
      return new Error(`no sender at ${where} (connection refused)`, { cause: error });
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new Error(`cannot resolve host ${host}`, { cause: error });
    case 'ECONNRESET':
      return new Error(`the sender at ${where} reset the connection`, { cause: error });
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return new Error(`cannot reach ${where} (${error.code})`, { cause: error });
    default:
      return new Error(`connection to ${where} failed: ${error.message}`, { cause: error });
  }
}
