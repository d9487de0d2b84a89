import net from 'node:net';
import {
  encodeMessage,
  MessageDecoder,
  PROTOCOL_NAME,
  PROTOCOL_VERSION,
  ProtocolError,
  type Header,
  type StreamDescription,
} from '@camstream/protocol';
import type { EncodedFrame } from './encoded-frame';
import { Viewer } from './viewer';

export interface StreamServerOptions {
  host: string;
  port: number;
  stream: StreamDescription;
  /** Receivers served at once; more are refused with a reason. */
  maxViewers: number;
  /** A client that has not said hello by then is dropped. */
  handshakeTimeoutMs?: number;
  log?: (line: string) => void;
}

/** Receivers only ever send small control messages; anything bigger is hostile. */
const MAX_CLIENT_MESSAGE_BYTES = 64 * 1024;
/** How long close() waits for receivers to read their bye before cutting them off. */
const CLOSE_GRACE_MS = 1000;

export class ListenError extends Error {}

/**
 * Accepts receivers, runs the handshake and fans every encoded frame out to all of them.
 * Knows nothing about capture or codecs: frames arrive already encoded, once.
 */
export class StreamServer {
  private readonly viewers = new Map<Socket, Viewer>();
  private readonly sockets = new Set<Socket>();
  private nextViewerId = 1;
  private closing = false;
  private viewerJoined: (() => void) | undefined;

  private constructor(
    private readonly server: net.Server,
    private readonly options: StreamServerOptions,
  ) {
    server.on('connection', (socket) => this.accept(socket));
  }

  static listen(options: StreamServerOptions): Promise<StreamServer> {
    const server = net.createServer();
    return new Promise((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(new ListenError(describeListenError(err, options), { cause: err })));
      server.listen({ host: options.host, port: options.port, backlog: 64 }, () => {
        server.removeAllListeners('error');
        server.on('error', (err) => options.log?.(`server error: ${err.message}`));
        resolve(new StreamServer(server, options));
      });
    });
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  get address(): string {
    const a = this.server.address() as net.AddressInfo;
    return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
  }

  get viewerList(): Viewer[] {
    return [...this.viewers.values()];
  }

  /** Connections, handshaken or not: what the viewer limit counts. */
  get connectionCount(): number {
    return this.sockets.size;
  }

  /** Resolves when at least one receiver has finished its handshake. */
  waitForViewer(): Promise<void> {
    if (this.viewers.size > 0) return Promise.resolve();
    return new Promise((resolve) => {
      const previous = this.viewerJoined;
      this.viewerJoined = () => {
        previous?.();
        resolve();
      };
    });
  }

  broadcast(frame: EncodedFrame): void {
    for (const viewer of this.viewers.values()) viewer.offer(frame);
  }

  /** Says bye to everyone, stops listening and resolves once every socket is closed. */
  async close(reason: string): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const serverClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const socketsClosed = [...this.sockets].map((socket) => {
      const closed = new Promise<void>((resolve) => {
        if (socket.destroyed) resolve();
        else socket.once('close', () => resolve());
      });
      if (this.viewers.has(socket)) sendControl(socket, { type: 'bye', reason });
      socket.end();
      setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
      return closed;
    });
    await Promise.all([serverClosed, ...socketsClosed]);
  }

  private accept(socket: Socket): void {
    const log = this.options.log ?? (() => undefined);
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    this.sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('error', () => undefined); // 'close' follows; the reason is logged there
    socket.on('close', (hadError) => {
      this.sockets.delete(socket);
      const viewer = this.viewers.get(socket);
      if (viewer) {
        this.viewers.delete(socket);
        log(`viewer #${viewer.id} (${viewer.name}) left${hadError ? ' (connection error)' : ''}: ${viewer.sent} frames sent, ${viewer.dropped} dropped`);
      }
    });

    if (this.closing) {
      socket.destroy();
      return;
    }
    if (this.sockets.size > this.options.maxViewers) {
      log(`refused ${peer}: already serving the maximum of ${this.options.maxViewers} viewers`);
      refuse(socket, 'ERR_FULL', `the sender is at its limit of ${this.options.maxViewers} viewers`);
      return;
    }

    const decoder = new MessageDecoder({ maxMessageBytes: MAX_CLIENT_MESSAGE_BYTES, maxHeaderBytes: MAX_CLIENT_MESSAGE_BYTES });
    const handshakeTimer = setTimeout(() => {
      log(`dropped ${peer}: no hello within ${this.options.handshakeTimeoutMs ?? 5000} ms`);
      refuse(socket, 'ERR_HANDSHAKE_TIMEOUT', 'no hello received in time');
    }, this.options.handshakeTimeoutMs ?? 5000);
    socket.once('close', () => clearTimeout(handshakeTimer));

    socket.on('data', (chunk: Buffer) => {
      let messages;
      try {
        messages = decoder.push(chunk);
      } catch (err) {
        const e = err as ProtocolError;
        log(`dropped ${peer}: ${e.message}`);
        refuse(socket, e.code ?? 'ERR_PROTOCOL', e.message);
        return;
      }
      for (const { header } of messages) {
        if (!this.viewers.has(socket)) {
          if (header.type !== 'hello' || header.role !== 'receiver') {
            refuse(socket, 'ERR_HANDSHAKE', `expected a hello from a receiver, got ${describe(header)}`);
            return;
          }
          clearTimeout(handshakeTimer);
          sendControl(socket, {
            type: 'hello',
            protocol: PROTOCOL_NAME,
            version: PROTOCOL_VERSION,
            role: 'sender',
            stream: this.options.stream,
          });
          const viewer = new Viewer(this.nextViewerId++, header.name ?? peer, socket);
          this.viewers.set(socket, viewer);
          log(`viewer #${viewer.id} (${viewer.name}) joined from ${peer}; ${this.viewers.size} watching`);
          const joined = this.viewerJoined;
          this.viewerJoined = undefined;
          joined?.();
        } else if (header.type === 'bye') {
          socket.end();
        } else {
          refuse(socket, 'ERR_UNEXPECTED', `unexpected ${describe(header)} after the handshake`);
          return;
        }
      }
    });
  }
}

type Socket = net.Socket;

function sendControl(socket: Socket, header: Header): void {
  if (socket.destroyed || socket.writableEnded) return;
  const { head } = encodeMessage(header);
  socket.write(head);
}

/** Tells the peer why, then closes; destroy() follows if it does not read. */
function refuse(socket: Socket, code: string, reason: string): void {
  sendControl(socket, { type: 'error', code, reason });
  socket.end();
  setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
}

function describe(header: Header): string {
  return header.type === 'hello' ? `hello from a ${header.role}` : `'${header.type}' message`;
}

function describeListenError(err: NodeJS.ErrnoException, { host, port }: StreamServerOptions): string {
  switch (err.code) {
    case 'EADDRINUSE':
      return `port ${port} on ${host} is already in use (is another sender running?)`;
    case 'EACCES':
      return `not allowed to listen on ${host}:${port} (ports below 1024 need privileges)`;
    case 'EADDRNOTAVAIL':
      return `${host} is not an address of this machine`;
    case 'ENOTFOUND':
      return `cannot resolve host ${host}`;
    default:
      return `cannot listen on ${host}:${port}: ${err.message}`;
  }
}
