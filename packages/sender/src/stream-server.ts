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
import { PendingHandshakes } from './pending-handshakes';
import { RefusalLog } from './refusal-log';
import { Viewer } from './viewer';

export interface StreamServerOptions {
  host: string;
  port: number;
  stream: StreamDescription;
  /** Receivers served at once, counted once their handshake has finished; more are refused with a reason. */
  maxViewers: number;
  /** A client that has not finished its handshake (TLS, hello, auth) by then is refused (default 5 s). */
  handshakeTimeoutMs?: number;
  /** Connections in their handshake at once, from all addresses (default 128): see PendingHandshakes. */
  maxPendingHandshakes?: number;
  /** Connections in their handshake at once from one source address (default 64). */
  maxPendingPerAddress?: number;
  /** Refusals too many to log one by one are summed up in one line this often (default 5 s). */
  refusalSummaryMs?: number;
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
/** How long a closing connection is given to read its last message (a bye or an error) before it is cut off. */
const CLOSE_GRACE_MS = 1000;
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5000;
/** A receiver's handshake takes a round trip or two: this many at once from one address is a flood. */
const DEFAULT_MAX_PENDING_PER_ADDRESS = 64;
const DEFAULT_MAX_PENDING_HANDSHAKES = 128;
/** How much of what a peer says about itself (an error's reason) goes into a log line. */
const MAX_QUOTED_CHARS = 200;

export class ListenError extends Error {}

/** One accepted TCP connection, from accept to close; it becomes a viewer once its handshake finished. */
class Connection {
  /** Where camstream messages go: the TCP socket, or the TLS socket on it once TLS is up. */
  socket: Socket | undefined;
  decoder: MessageDecoder | undefined;
  viewer: Viewer | undefined;
  /** Refused or told to go: it is only waiting to be closed. */
  ending = false;
  deadline: NodeJS.Timeout | undefined;

  constructor(
    readonly tcp: Socket,
    /** Address and port, taken at accept: later the socket may no longer know them. */
    readonly peer: string,
    /** The source address, what the per-address handshake limit counts. */
    readonly address: string,
  ) {}

  /** How log lines name it. */
  get who(): string {
    return this.viewer ? `viewer #${this.viewer.id} (${this.viewer.name})` : this.peer;
  }
}

/**
 * Accepts receivers, runs the handshake and fans every encoded frame out to all of them.
 * Knows nothing about capture or codecs: frames arrive already encoded, once.
 */
export class StreamServer {
  private readonly connections = new Set<Connection>();
  private readonly viewers = new Map<Connection, Viewer>();
  private readonly pending: PendingHandshakes<Connection>;
  /** TLS connections whose TLS handshake is under way, by peer (what links the TLS socket to its TCP one). */
  private readonly awaitingTls = new Map<string, Connection>();
  private readonly refusals: RefusalLog;
  private readonly log: (line: string) => void;
  private readonly handshakeTimeoutMs: number;
  private nextViewerId = 1;
  private closing = false;
  private viewerJoined: (() => void) | undefined;

  private readonly maintenance: NodeJS.Timeout;

  private constructor(
    private readonly server: net.Server,
    private readonly options: StreamServerOptions,
  ) {
    this.log = options.log ?? (() => undefined);
    this.refusals = new RefusalLog(this.log, { ...(options.refusalSummaryMs === undefined ? {} : { summaryMs: options.refusalSummaryMs }) });
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    this.pending = new PendingHandshakes({
      total: options.maxPendingHandshakes ?? DEFAULT_MAX_PENDING_HANDSHAKES,
      perAddress: options.maxPendingPerAddress ?? DEFAULT_MAX_PENDING_PER_ADDRESS,
    });
    // Every TCP connection, TLS or not, is counted and given its deadline from accept on.
    server.on('connection', (tcp: Socket) => this.accept(tcp));
    if (options.tls) {
      server.on('secureConnection', (socket: tls.TLSSocket) => this.secured(socket));
      server.on('tlsClientError', (err: Error, socket: tls.TLSSocket) => this.tlsFailed(err, socket));
    }
    const pingMs = options.pingIntervalMs ?? 2000;
    this.maintenance = setInterval(() => this.maintain(pingMs), Math.min(pingMs, 1000));
    this.maintenance.unref();
  }

  static listen(options: StreamServerOptions): Promise<StreamServer> {
    // No handshakeTimeout for TLS: the sender's own deadline, from accept on, covers TLS too.
    const server = options.tls ? tls.createServer({ cert: options.tls.cert, key: options.tls.key, minVersion: 'TLSv1.2' }) : net.createServer();
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

  /** Open connections: viewers, handshakes under way and refused ones not yet closed. */
  get connectionCount(): number {
    return this.connections.size;
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

  /**
   * Says bye to every viewer, stops listening and resolves once every socket is closed: as soon
   * as the viewers have closed theirs, or after CLOSE_GRACE_MS for one that does not. Connections
   * still in their handshake are no receivers yet: they are closed at once.
   */
  async close(reason: string): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.maintenance);
    this.refusals.flush();
    const serverClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const socketsClosed = [...this.connections].map((connection) => {
      const { tcp, socket } = connection;
      const closed = new Promise<void>((resolve) => {
        if (tcp.destroyed) resolve();
        else tcp.once('close', () => resolve());
      });
      clearTimeout(connection.deadline);
      if (connection.viewer && socket && !connection.ending) {
        sendControl(socket, { type: 'bye', reason });
        socket.end();
        setTimeout(() => tcp.destroy(), CLOSE_GRACE_MS).unref();
      } else {
        tcp.destroy();
      }
      return closed;
    });
    await Promise.all([serverClosed, ...socketsClosed]);
  }

  /** Pings idle viewers and cuts off those whose sockets stopped taking bytes long ago. */
  private maintain(pingMs: number): void {
    const now = performance.now();
    const stalledLimit = this.options.stalledViewerTimeoutMs ?? 30_000;
    for (const [connection, viewer] of this.viewers) {
      if (viewer.stalledForMs(now) > stalledLimit) {
        this.log(`viewer #${viewer.id} (${viewer.name}) took no data for ${(stalledLimit / 1000).toFixed(1)} s: disconnected`);
        connection.tcp.destroy();
      } else {
        viewer.pingIfIdle(pingMs, now);
      }
    }
  }

  private accept(tcp: Socket): void {
    if (this.closing) {
      tcp.destroy();
      return;
    }
    const connection = new Connection(tcp, describePeer(tcp), tcp.remoteAddress ?? 'unknown');
    this.connections.add(connection);
    tcp.on('error', () => undefined); // 'close' follows; the reason is logged there
    tcp.once('close', (hadError) => this.closed(connection, hadError));
    connection.deadline = setTimeout(() => this.handshakeTimedOut(connection), this.handshakeTimeoutMs);
    const victim = this.pending.add(connection, connection.address);
    if (victim) this.makeRoom(victim);
    if (!this.options.tls) this.startSession(connection, tcp);
    else if (tcp.remoteAddress !== undefined) this.awaitingTls.set(connection.peer, connection);
  }

  /** TLS is up on a connection accepted earlier: the camstream handshake starts. */
  private secured(socket: tls.TLSSocket): void {
    const peer = describePeer(socket);
    const connection = this.awaitingTls.get(peer);
    this.awaitingTls.delete(peer);
    if (!connection || connection.ending) {
      socket.destroy(); // closed to make room, or gone already
      return;
    }
    socket.on('error', () => undefined); // the TCP socket's 'close' follows
    this.startSession(connection, socket);
  }

  private tlsFailed(err: Error, socket: tls.TLSSocket): void {
    const peer = describePeer(socket);
    const connection = this.awaitingTls.get(peer);
    // The TLS server leaves the socket open after its handshake timeout.
    socket.destroy();
    // Not found or ending: it was closed already (to make room, by the deadline, or by the client).
    if (!connection || connection.ending) return;
    connection.ending = true;
    clearTimeout(connection.deadline);
    this.refusals.refused(`refused ${connection.peer}: TLS handshake failed: ${err.message}`, 'TLS handshake failed');
  }

  private closed(connection: Connection, hadError: boolean): void {
    clearTimeout(connection.deadline);
    this.connections.delete(connection);
    this.pending.remove(connection);
    if (this.awaitingTls.get(connection.peer) === connection) this.awaitingTls.delete(connection.peer);
    const viewer = connection.viewer;
    if (viewer) {
      this.viewers.delete(connection);
      this.log(`viewer #${viewer.id} (${viewer.name}) left${hadError ? ' (connection error)' : ''}: ${viewer.sent} frames sent, ${viewer.dropped} frames dropped`);
    }
  }

  private startSession(connection: Connection, socket: Socket): void {
    connection.socket = socket;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    const decoder = new MessageDecoder({ maxMessageBytes: MAX_CLIENT_MESSAGE_BYTES, maxHeaderBytes: MAX_CLIENT_MESSAGE_BYTES });
    connection.decoder = decoder;
    const handshake = new ServerHandshake(this.options.stream, this.options.secret);
    socket.on('data', (chunk: Buffer) => {
      try {
        // Each message is acted on as it is decoded: one that is refused stops the decoder, and
        // the bytes after it are never read (PROTOCOL.md 4.5), even when they came in this chunk.
        decoder.push(chunk, ({ header }) => this.onMessage(connection, handshake, header));
      } catch (err) {
        if (err instanceof ProtocolError) {
          this.refuse(connection, err.code, err.message);
        } else {
          this.log(`internal error while reading from ${connection.who}: ${(err as Error).message}`);
          connection.tcp.destroy();
        }
      }
    });
  }

  private onMessage(connection: Connection, handshake: ServerHandshake, header: Header): void {
    const socket = connection.socket!;
    if (header.type === 'error') {
      // The receiver gave up on us: log it and close, never answer an error with an error.
      const line = `${connection.who} closed with an error: ${quote(header.reason)} (${quote(header.code)})`;
      if (connection.viewer) this.log(line);
      else this.refusals.refused(line, 'closed by the client with an error');
      this.endConnection(connection);
      return;
    }
    if (!connection.viewer) {
      const step = handshake.next(header);
      if (step.refuse) return this.refuse(connection, step.refuse.code, step.refuse.reason);
      this.pending.advance(connection, 'hello');
      if (step.send) sendControl(socket, step.send);
      if (step.welcome) this.welcome(connection, handshake.name, step.welcome);
    } else if (header.type === 'bye') {
      this.endConnection(connection);
    } else {
      this.refuse(connection, 'ERR_UNEXPECTED', `unexpected ${describe(header)} after the handshake`);
    }
  }

  /** The handshake finished: a viewer slot is taken now, if one is free. */
  private welcome(connection: Connection, name: string | undefined, hello: Header): void {
    const { maxViewers } = this.options;
    if (this.viewers.size >= maxViewers) {
      this.refuse(connection, 'ERR_FULL', `the sender is at its limit of ${maxViewers} viewers`);
      return;
    }
    clearTimeout(connection.deadline);
    this.pending.remove(connection);
    const socket = connection.socket!;
    sendControl(socket, hello);
    const viewer = new Viewer(this.nextViewerId++, name ?? connection.peer, socket, connection.peer);
    connection.viewer = viewer;
    this.viewers.set(connection, viewer);
    this.log(`viewer #${viewer.id} (${viewer.name}) joined from ${connection.peer}${this.options.secret ? ' (authenticated)' : ''}; ${this.viewers.size} watching`);
    const joined = this.viewerJoined;
    this.viewerJoined = undefined;
    joined?.();
  }

  private handshakeTimedOut(connection: Connection): void {
    const ms = this.handshakeTimeoutMs;
    if (connection.ending) return;
    if (!connection.socket) {
      this.refusals.refused(`refused ${connection.peer}: no TLS handshake within ${ms} ms`, 'ERR_HANDSHAKE_TIMEOUT');
      connection.ending = true;
      connection.tcp.destroy();
    } else if (this.pending.stageOf(connection) === 'hello') {
      this.refuse(connection, 'ERR_HANDSHAKE_TIMEOUT', 'handshake not finished in time', `handshake not finished within ${ms} ms`);
    } else {
      this.refuse(connection, 'ERR_HANDSHAKE_TIMEOUT', 'no hello received in time', `no hello within ${ms} ms`);
    }
  }

  /** Closes a pending connection so that a newer one fits within the limits (PendingHandshakes says which). */
  private makeRoom(connection: Connection): void {
    const socket = connection.socket;
    if (connection.ending) {
      connection.tcp.destroy(); // refused already, and told why
      return;
    }
    const sameAddress = this.pending.countFrom(connection.address);
    const reason = `too many connections are in their handshake (${sameAddress} from ${connection.address}): the oldest made room for a newer one`;
    this.refusals.refused(`refused ${connection.peer}: ${reason}${socket ? '' : ' (closed during its TLS handshake)'}`, 'ERR_FULL');
    this.stopReading(connection);
    if (!socket) {
      connection.tcp.destroy(); // no TLS yet: nothing can be said to it
      return;
    }
    sendControl(socket, { type: 'error', code: 'ERR_FULL', reason });
    // No grace: it is closed as soon as its error is handed to the kernel, its slot is taken already.
    socket.end(() => connection.tcp.destroy());
    setTimeout(() => connection.tcp.destroy(), CLOSE_GRACE_MS).unref();
  }

  /** Tells the peer why, then closes; destroy() follows if it does not read. */
  private refuse(connection: Connection, code: string, reason: string, logReason = reason): void {
    this.refusals.refused(`refused ${connection.who}: ${logReason}`, code);
    this.stopReading(connection);
    sendControl(connection.socket ?? connection.tcp, { type: 'error', code, reason });
    this.closeGracefully(connection);
  }

  /** The peer said bye or sent an error: close our side too, without a word. */
  private endConnection(connection: Connection): void {
    this.stopReading(connection);
    this.closeGracefully(connection);
  }

  /** Decodes (and logs) nothing more from it; the handshake deadline no longer applies. */
  private stopReading(connection: Connection): void {
    connection.ending = true;
    connection.decoder?.stop();
    clearTimeout(connection.deadline);
    this.pending.advance(connection, 'refused');
  }

  private closeGracefully(connection: Connection): void {
    const socket = connection.socket ?? connection.tcp;
    socket.end();
    // Whatever else it sends is read and dropped: closing with unread bytes would reset the
    // connection, and the peer might lose our last message.
    socket.removeAllListeners('data');
    socket.resume();
    setTimeout(() => connection.tcp.destroy(), CLOSE_GRACE_MS).unref();
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

function describe(header: Header): string {
  return header.type === 'hello' ? `hello from a ${header.role}` : `'${header.type}' message`;
}

/** "address:port" ("[v6]:port"), or what to say when the client was gone before it was accepted. */
function describePeer(socket: Socket): string {
  const { remoteAddress: address, remotePort: port } = socket;
  if (address === undefined) return 'an unknown address (the client was gone before it was accepted)';
  return net.isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
}

/** Text the peer chose, fit for one log line: clipped, control characters escaped. */
function quote(text: string): string {
  const clipped = text.length > MAX_QUOTED_CHARS ? `${text.slice(0, MAX_QUOTED_CHARS - 3)}...` : text;
  return clipped.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
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
