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
  signal?: AbortSignal;
}

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

    /** `farewell`: the last message to send before closing (bye when stopping, error when failing). */
    const finish = (end: SessionEnd, farewell?: Buffer) => {
      if (settled) return;
      settled = end;
      // Nothing more is decoded, not even the rest of a chunk that held a bye or an error (PROTOCOL.md 4.5).
      decoder.stop();
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
      const where = decoder.midMessage ? ' in the middle of a message' : !stream && !options.tls ? ' before its hello (if it uses TLS, connect with --tls)' : '';
      finish({ kind: 'failed', connected, error: new Error(`the sender closed the connection${where}`) });
    });
    // Each message is acted on as soon as it is decoded: a rejected one throws (which stops the
    // decoder) and finish() stops it too, so no byte after that message is ever decoded.
    const onMessage = ({ header, payload }: Message): void => {
      if (settled) return;
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
      try {
        decoder.push(chunk, onMessage);
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
