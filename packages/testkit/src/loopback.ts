import { Duplex } from 'node:stream';
import * as net from 'node:net';

/** Listens on an OS-chosen free port and resolves with it. */
export function listenOnFreePort(server: net.Server, host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once('error', onError);
    server.listen(0, host, () => {
      server.off('error', onError);
      const address = server.address();
      if (address && typeof address === 'object') resolve(address.port);
      else reject(new Error(`server is not listening on a TCP port: ${String(address)}`));
    });
  });
}

/**
 * A port that was free a moment ago. For a child process that must listen on a known port;
 * in-process servers should use listenOnFreePort instead, which cannot race.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = net.createServer();
  const port = await listenOnFreePort(server, host);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function brokenPipe(): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error('write EPIPE: the other end of the memory pair is destroyed');
  error.code = 'EPIPE';
  return error;
}

/** One end of a memoryDuplexPair: its writes become the peer's reads. */
class MemorySocketEnd extends Duplex {
  peer!: MemorySocketEnd;
  /** The peer's write callback, held back while our read buffer is full (backpressure). */
  private blockedPeerWrite: ((error?: Error | null) => void) | undefined;

  constructor(highWaterMark: number | undefined) {
    // allowHalfOpen false, like net.Socket: once the peer ends, this end ends too.
    super({ allowHalfOpen: false, highWaterMark });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const peer = this.peer;
    if (peer.destroyed) {
      callback(brokenPipe());
      return;
    }
    if (peer.push(chunk)) callback();
    else peer.blockedPeerWrite = callback;
  }

  override _read(): void {
    const release = this.blockedPeerWrite;
    this.blockedPeerWrite = undefined;
    release?.();
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.peer.destroyed) this.peer.push(null);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Like a closed TCP connection: the peer reads what is buffered, then end-of-stream, and
    // a write it had waiting on us fails.
    const release = this.blockedPeerWrite;
    this.blockedPeerWrite = undefined;
    release?.(brokenPipe());
    if (!this.peer.destroyed) this.peer.push(null);
    callback(error);
  }
}

/**
 * Two connected in-memory duplex streams, a socket pair without the network: what one end
 * writes the other reads, in order. A writer whose peer does not read gets write() === false
 * once both buffers are full, end() reaches the peer as end-of-stream, and destroying one end
 * ends the other's stream (its own writes then fail with EPIPE).
 */
export function memoryDuplexPair(options: { highWaterMark?: number } = {}): [Duplex, Duplex] {
  const left = new MemorySocketEnd(options.highWaterMark);
  const right = new MemorySocketEnd(options.highWaterMark);
  left.peer = right;
  right.peer = left;
  return [left, right];
}

export interface StallingClient extends AsyncDisposable {
  readonly socket: net.Socket;
  close(): Promise<void>;
}

/**
 * A viewer that connects, optionally sends a handshake, and then never reads: the server's
 * writes pile up in the kernel buffers until its socket reports backpressure. Resolves once
 * connected (and the handshake is handed to the kernel).
 */
export async function stallingClient(port: number, host = '127.0.0.1', handshake?: Uint8Array): Promise<StallingClient> {
  const socket = net.connect({ port, host });
  socket.pause();
  // The server will likely drop us; that must not crash the test process.
  socket.on('error', () => undefined);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    if (handshake && handshake.length > 0) {
      await new Promise<void>((resolve, reject) => socket.write(handshake, (error) => (error ? reject(error) : resolve())));
    }
  } catch (error) {
    socket.destroy();
    throw error;
  }
  const close = async (): Promise<void> => {
    if (socket.closed) return;
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.destroy();
    });
  };
  return { socket, close, [Symbol.asyncDispose]: close };
}
