import net from 'node:net';
import {
  encodeMessage,
  MessageDecoder,
  PROTOCOL_NAME,
  PROTOCOL_VERSION,
  type FrameHeader,
  type Header,
  type StreamDescription,
} from '@camstream/protocol';

export interface SessionOptions {
  host: string;
  port: number;
  name: string;
  /** Gives up on a sender that accepts but never answers the hello. */
  handshakeTimeoutMs?: number;
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

/**
 * One connection to a sender, from connect to close: hello both ways, then frames. Resolves
 * (never rejects) with how it ended, so the caller decides whether to reconnect.
 */
export function runSession(options: SessionOptions, handlers: SessionHandlers): Promise<SessionEnd> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: options.host, port: options.port });
    socket.setNoDelay(true);
    let connected = false;
    let stream: StreamDescription | undefined;
    let settled: SessionEnd | undefined;
    const decoder = new MessageDecoder();

    const finish = (end: SessionEnd) => {
      if (settled) return;
      settled = end;
      clearTimeout(handshakeTimer);
      options.signal?.removeEventListener('abort', onAbort);
      if (end.kind === 'stopped' && !socket.destroyed && connected) {
        socket.end(encodeMessage({ type: 'bye', reason: 'receiver stopping' }).head);
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

    socket.on('connect', () => {
      connected = true;
      socket.write(
        encodeMessage({ type: 'hello', protocol: PROTOCOL_NAME, version: PROTOCOL_VERSION, role: 'receiver', name: options.name }).head,
      );
    });
    socket.on('error', (error) => finish({ kind: 'failed', connected, error: describeSocketError(error, options) }));
    socket.on('close', () => {
      const truncated = decoder.midMessage ? ' in the middle of a message' : '';
      finish({ kind: 'failed', connected, error: new Error(`the sender closed the connection${truncated}`) });
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const { header, payload } of decoder.push(chunk)) {
          if (settled) return;
          if (header.type === 'error') return finish({ kind: 'refused', code: header.code, reason: header.reason });
          if (!stream) {
            stream = expectHello(header);
            clearTimeout(handshakeTimer);
            handlers.onStream(stream);
            continue;
          }
          switch (header.type) {
            case 'frame':
              checkAgainstStream(header, stream);
              handlers.onFrame(header, payload);
              break;
            case 'bye':
              return finish({ kind: 'bye', reason: header.reason });
            default:
              throw new Error(`unexpected '${header.type}' message from the sender`);
          }
        }
      } catch (error) {
        finish({ kind: 'failed', connected, error: error as Error });
      }
    });
  });
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

function describeSocketError(error: NodeJS.ErrnoException, { host, port }: SessionOptions): Error {
  const where = `${host}:${port}`;
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
