import net from 'node:net';
import tls from 'node:tls';
import {
  encodeMessage,
  MessageDecoder,
  newNonce,
  PROTOCOL_NAME,
  PROTOCOL_VERSION,
  ProtocolError,
  proofsMatch,
  receiverProof,
  senderProof,
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
  /** A client that has not finished its handshake (TLS, hello, auth) by then is dropped. */
  handshakeTimeoutMs?: number;
  /** Shared secret: receivers must prove they know it (HMAC challenge-response). */
  secret?: string;
  /** Serve over TLS with this certificate chain and private key (PEM). */
  tls?: { cert: Buffer; key: Buffer };
  /** A viewer that got nothing for this long is sent a ping (default 2 s). */
  pingIntervalMs?: number;
  /** A viewer whose socket takes no bytes for this long is disconnected (default 30 s). */
  stalledViewerTimeoutMs?: number;
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

  private readonly maintenance: NodeJS.Timeout;

  private constructor(
    private readonly server: net.Server,
    private readonly options: StreamServerOptions,
  ) {
    server.on(options.tls ? 'secureConnection' : 'connection', (socket: Socket) => this.accept(socket));
    server.on('tlsClientError', (err: Error, socket: tls.TLSSocket) => {
      options.log?.(`TLS handshake with ${socket.remoteAddress}:${socket.remotePort} failed: ${err.message}`);
    });
    const pingMs = options.pingIntervalMs ?? 2000;
    this.maintenance = setInterval(() => this.maintain(pingMs), Math.min(pingMs, 1000));
    this.maintenance.unref();
  }

  static listen(options: StreamServerOptions): Promise<StreamServer> {
    const server = options.tls
      ? tls.createServer({
          cert: options.tls.cert,
          key: options.tls.key,
          minVersion: 'TLSv1.2',
          handshakeTimeout: options.handshakeTimeoutMs ?? 5000,
        })
      : net.createServer();
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
    clearInterval(this.maintenance);
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

  /** Pings idle viewers and cuts off those whose sockets stopped taking bytes long ago. */
  private maintain(pingMs: number): void {
    const now = performance.now();
    const stalledLimit = this.options.stalledViewerTimeoutMs ?? 30_000;
    for (const [socket, viewer] of this.viewers) {
      if (viewer.stalledForMs(now) > stalledLimit) {
        this.options.log?.(`viewer #${viewer.id} (${viewer.name}) took no data for ${(stalledLimit / 1000).toFixed(1)} s: disconnected`);
        socket.destroy();
      } else {
        viewer.pingIfIdle(pingMs, now);
      }
    }
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
    const handshake = new ServerHandshake(this.options.stream, this.options.secret);
    socket.setKeepAlive(true, 10_000);
    const handshakeTimer = setTimeout(() => {
      log(`dropped ${peer}: no hello within ${this.options.handshakeTimeoutMs ?? 5000} ms`);
      refuse(socket, 'ERR_HANDSHAKE_TIMEOUT', 'no hello received in time');
    }, this.options.handshakeTimeoutMs ?? 5000);
    socket.once('close', () => clearTimeout(handshakeTimer));
    // Once we have ended our side (refused, or the receiver said bye) the deadline is moot.
    socket.once('finish', () => clearTimeout(handshakeTimer));

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
        if (header.type === 'error') {
          // The receiver gave up on us: log it and close, never answer an error with an error.
          log(`${this.viewers.get(socket)?.name ?? peer} closed with an error: ${header.reason} (${header.code})`);
          socket.end();
          return;
        }
        if (!this.viewers.has(socket)) {
          const step = handshake.next(header);
          if (step.refuse) {
            log(`refused ${peer}: ${step.refuse.reason}`);
            refuse(socket, step.refuse.code, step.refuse.reason);
            return;
          }
          if (step.send) sendControl(socket, step.send);
          if (!step.welcome) continue;
          clearTimeout(handshakeTimer);
          sendControl(socket, step.welcome);
          const viewer = new Viewer(this.nextViewerId++, handshake.name ?? peer, socket);
          this.viewers.set(socket, viewer);
          log(`viewer #${viewer.id} (${viewer.name}) joined from ${peer}${this.options.secret ? ' (authenticated)' : ''}; ${this.viewers.size} watching`);
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

type HandshakeStep =
  | { refuse: { code: string; reason: string }; send?: undefined; welcome?: undefined }
  | { refuse?: undefined; send?: Header; welcome?: Header };

/**
 * The sender's side of the handshake: hello from the receiver, then, when a secret is set,
 * a challenge and the receiver's proof, then the sender's hello with the stream (and the
 * sender's own proof). The stream is described only to receivers that passed.
 */
class ServerHandshake {
  name: string | undefined;
  private readonly senderNonce = newNonce();
  private receiverNonce: string | undefined;
  private state: 'hello' | 'auth' = 'hello';

  constructor(
    private readonly stream: StreamDescription,
    private readonly secret: string | undefined,
  ) {}

  next(header: Header): HandshakeStep {
    if (this.state === 'hello') {
      if (header.type !== 'hello' || header.role !== 'receiver') {
        return { refuse: { code: 'ERR_HANDSHAKE', reason: `expected a hello from a receiver, got ${describe(header)}` } };
      }
      this.name = header.name;
      if (this.secret === undefined) return { welcome: this.hello() };
      if (!header.nonce) {
        return { refuse: { code: 'ERR_AUTH', reason: 'this sender requires a shared secret, and the receiver offered none (set --secret or CAMSTREAM_SECRET)' } };
      }
      this.receiverNonce = header.nonce;
      this.state = 'auth';
      return { send: { type: 'challenge', method: 'hmac-sha256', nonce: this.senderNonce } };
    }
    if (header.type !== 'auth') {
      return { refuse: { code: 'ERR_AUTH', reason: `expected the answer to the challenge, got ${describe(header)}` } };
    }
    const expected = receiverProof(this.secret!, this.senderNonce, this.receiverNonce!);
    if (!proofsMatch(expected, header.mac)) {
      return { refuse: { code: 'ERR_AUTH', reason: 'authentication failed: wrong shared secret' } };
    }
    return { welcome: this.hello(senderProof(this.secret!, this.senderNonce, this.receiverNonce!)) };
  }

  private hello(proof?: string): Header {
    return {
      type: 'hello',
      protocol: PROTOCOL_NAME,
      version: PROTOCOL_VERSION,
      role: 'sender',
      stream: this.stream,
      ...(proof ? { proof } : {}),
    };
  }
}

function sendControl(socket: Socket, header: Header): void {
  if (socket.destroyed || socket.writableEnded) return;
  const { head } = encodeMessage(header);
  socket.write(head);
}

/** Tells the peer why, then closes; destroy() follows if it does not read. */
function refuse(socket: Socket, code: string, reason: string): void {
  sendControl(socket, { type: 'error', code, reason });
  socket.end();
  // Decode (and log) nothing more from it: whatever else it sends is read and dropped.
  socket.removeAllListeners('data');
  socket.resume();
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
