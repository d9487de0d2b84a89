import net from 'node:net';
import tls from 'node:tls';
import {
  encodeMessage,
  MessageDecoder,
  ProtocolError,
  SenderSession,
  SessionError,
  type FlowWindowOptions,
  type Header,
  type SenderSessionEnd,
  type SenderSessionEvent,
} from '@camstream/protocol';
import type { Broadcast } from './broadcast';
import { addressOf, listenOn, portOf } from './listening';
import { PendingHandshakes } from './pending-handshakes';
import { RefusalLog } from './refusal-log';
import { formatMbps } from './format';
import { TcpViewer } from './tcp-viewer';

export interface StreamServerOptions {
  host: string;
  port: number;
  /** The stream (what the hello announces) and the fan-out that viewers join. */
  broadcast: Broadcast;
  /** The sender's name, sent in its hello (--name). */
  name?: string;
  /** Receivers served at once, counted once their handshake has finished; more are refused with a reason. */
  maxViewers: number;
  /** Move each viewer along the quality ladder as its link allows (default true); off: rung 0 always. */
  adapt?: boolean;
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
  /**
   * A viewer that acknowledges nothing while frames wait for it (ERR_STALLED), or whose socket
   * takes no bytes, for this long is disconnected (default 30 s).
   */
  stalledViewerTimeoutMs?: number;
  /** Flow-control settings for every viewer (PROTOCOL.md 4.3; defaults there). */
  flow?: FlowWindowOptions;
  log?: (line: string) => void;
}

/** Receivers only ever send small control messages; anything bigger is hostile. */
const MAX_CLIENT_MESSAGE_BYTES = 64 * 1024;
/** How long a closing connection is given to read its last message (a bye or an error) before it is cut off. */
const CLOSE_GRACE_MS = 1000;
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5000;
const DEFAULT_STALLED_VIEWER_TIMEOUT_MS = 30_000;
/** A receiver's handshake takes a round trip or two: this many at once from one address is a flood. */
const DEFAULT_MAX_PENDING_PER_ADDRESS = 64;
const DEFAULT_MAX_PENDING_HANDSHAKES = 128;
/** How much of what a peer says about itself (an error's reason) goes into a log line. */
const MAX_QUOTED_CHARS = 200;

/** One accepted TCP connection, from accept to close; it becomes a viewer once its handshake finished. */
class Connection {
  /** Where camstream messages go: the TCP socket, or the TLS socket on it once TLS is up. */
  socket: Socket | undefined;
  decoder: MessageDecoder | undefined;
  session: SenderSession | undefined;
  viewer: TcpViewer | undefined;
  /** Refused or told to go: it is only waiting to be closed. */
  ending = false;
  /** What the log says about a refusal, when it says more than the error sent (the deadline's length). */
  refusalNote: string | undefined;
  deadline: NodeJS.Timeout | undefined;

  constructor(
    readonly tcp: Socket,
    /** Address and port, taken at accept: later the socket may no longer know them. */
    readonly peer: string,
    /** The source address, what the per-address handshake limit counts. */
    readonly address: string,
    /** performance.now() at accept: the handshake deadline counts from here, TLS included. */
    readonly acceptedAt: number,
  ) {}

  /** How log lines name it. */
  get who(): string {
    return this.viewer ? `viewer #${this.viewer.id} (${this.viewer.name})` : this.peer;
  }
}

/**
 * The sockets around SenderSession: accepts receivers (TCP or TLS), decodes what they send and
 * feeds it to their session, writes what the session says, and closes when it says so. A receiver
 * whose handshake finished becomes a TcpViewer in the broadcast, which hands it every frame.
 * Knows nothing about capture or codecs.
 */
export class StreamServer {
  private readonly connections = new Set<Connection>();
  private readonly viewers = new Map<Connection, TcpViewer>();
  private readonly pending: PendingHandshakes<Connection>;
  /** TLS connections whose TLS handshake is under way, by peer (what links the TLS socket to its TCP one). */
  private readonly awaitingTls = new Map<string, Connection>();
  private readonly refusals: RefusalLog;
  private readonly log: (line: string) => void;
  private readonly handshakeTimeoutMs: number;
  private readonly stalledViewerTimeoutMs: number;
  private nextViewerId = 1;
  private closing = false;
  private readonly maintenance: NodeJS.Timeout;

  private constructor(
    private readonly server: net.Server,
    private readonly options: StreamServerOptions,
  ) {
    this.log = options.log ?? (() => undefined);
    this.refusals = new RefusalLog(this.log, { ...(options.refusalSummaryMs === undefined ? {} : { summaryMs: options.refusalSummaryMs }) });
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    this.stalledViewerTimeoutMs = options.stalledViewerTimeoutMs ?? DEFAULT_STALLED_VIEWER_TIMEOUT_MS;
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
    // Often enough for pings, for the stall limit and for held-back log lines.
    const tickMs = Math.max(50, Math.min(options.pingIntervalMs ?? 2000, this.stalledViewerTimeoutMs / 4, 1000));
    this.maintenance = setInterval(() => this.maintain(), tickMs);
    this.maintenance.unref();
  }

  static listen(options: StreamServerOptions): Promise<StreamServer> {
    // No handshakeTimeout for TLS: the sender's own deadline, from accept on, covers TLS too.
    const server = options.tls ? tls.createServer({ cert: options.tls.cert, key: options.tls.key, minVersion: 'TLSv1.2' }) : net.createServer();
    return listenOn(server, options).then(() => new StreamServer(server, options));
  }

  get port(): number {
    return portOf(this.server);
  }

  get address(): string {
    return addressOf(this.server);
  }

  get viewerList(): TcpViewer[] {
    return [...this.viewers.values()];
  }

  /** Open connections: viewers, handshakes under way and refused ones not yet closed. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** Resolves when at least one receiver has finished its handshake. */
  waitForViewer(): Promise<void> {
    return this.options.broadcast.nextViewer(true);
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
      const { tcp } = connection;
      const closed = new Promise<void>((resolve) => {
        if (tcp.destroyed) resolve();
        else tcp.once('close', () => resolve());
      });
      clearTimeout(connection.deadline);
      if (connection.viewer && connection.session && !connection.ending) this.handle(connection, connection.session.leave(reason));
      else tcp.destroy();
      return closed;
    });
    await Promise.all([serverClosed, ...socketsClosed]);
  }

  /** Session timers (pings, the ack stall), sockets that stopped taking bytes, held-back log lines. */
  private maintain(): void {
    const now = performance.now();
    const limit = this.stalledViewerTimeoutMs;
    for (const [connection, viewer] of this.viewers) {
      if (connection.ending) continue;
      this.handle(connection, connection.session!.tick(now));
      if (connection.ending) continue;
      if (viewer.socketBlockedForMs(now) > limit) {
        this.log(`${connection.who} took no data for ${seconds(limit)}: disconnected (its socket took no bytes)`);
        this.stopReading(connection);
        viewer.close();
        connection.tcp.destroy(); // it reads nothing: a last message would not reach it either
        continue;
      }
      viewer.flushRungLog(now);
    }
  }

  private accept(tcp: Socket): void {
    if (this.closing) {
      tcp.destroy();
      return;
    }
    const connection = new Connection(tcp, describePeer(tcp), tcp.remoteAddress ?? 'unknown', performance.now());
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
      viewer.close();
      this.options.broadcast.delete(viewer);
      this.viewers.delete(connection);
      this.log(`${connection.who} left${hadError ? ' (connection error)' : ''}: ${describeTotals(viewer)}`);
    }
  }

  private startSession(connection: Connection, socket: Socket): void {
    connection.socket = socket;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    const { options } = this;
    const session = new SenderSession({
      stream: options.broadcast.stream,
      ...(options.name === undefined ? {} : { name: options.name }),
      ...(options.secret === undefined ? {} : { secret: options.secret }),
      now: connection.acceptedAt,
      handshakeTimeoutMs: this.handshakeTimeoutMs,
      ...(options.pingIntervalMs === undefined ? {} : { pingIntervalMs: options.pingIntervalMs }),
      stallTimeoutMs: this.stalledViewerTimeoutMs,
      ...(options.flow ? { flow: options.flow } : {}),
    });
    connection.session = session;
    const decoder = new MessageDecoder({ maxMessageBytes: MAX_CLIENT_MESSAGE_BYTES, maxHeaderBytes: MAX_CLIENT_MESSAGE_BYTES });
    connection.decoder = decoder;
    socket.on('data', (chunk: Buffer) => {
      try {
        // Each message is acted on as it is decoded: once one ends the session the decoder stops,
        // and the bytes after it are never read (PROTOCOL.md section 4), even those in this chunk.
        decoder.push(chunk, ({ header }) => this.received(connection, header));
      } catch (err) {
        if (err instanceof ProtocolError) {
          this.handle(connection, session.fail(err));
        } else {
          this.log(`internal error while reading from ${connection.who}: ${(err as Error).message}`);
          connection.tcp.destroy();
        }
      }
    });
  }

  private received(connection: Connection, header: Header): void {
    const session = connection.session!;
    this.handle(connection, session.receive(header, performance.now()));
    // A receiver in its authentication is further along than one that said nothing yet.
    if (session.closed) connection.decoder!.stop();
    else if (!session.streaming) this.pending.advance(connection, 'hello');
  }

  /** Carries out what the session asks for, in order. */
  private handle(connection: Connection, events: SenderSessionEvent[]): void {
    const { maxViewers } = this.options;
    if (events.some((e) => e.type === 'joined') && this.viewers.size >= maxViewers) {
      // The handshake finished, but no slot is free: refuse instead of describing the stream.
      events = connection.session!.fail(new SessionError('ERR_FULL', `the sender is at its limit of ${maxViewers} viewers`));
    }
    for (const event of events) {
      switch (event.type) {
        case 'send':
          sendControl(connection.socket ?? connection.tcp, event.header);
          break;
        case 'joined':
          this.join(connection, event.receiverName);
          break;
        case 'acked':
          connection.viewer?.acked();
          break;
        case 'closed':
          this.ended(connection, event.end);
          break;
      }
    }
  }

  /** The handshake finished and a slot was free: the receiver becomes a viewer and gets frames. */
  private join(connection: Connection, receiverName: string | undefined): void {
    clearTimeout(connection.deadline);
    this.pending.remove(connection);
    const viewer = new TcpViewer(this.nextViewerId++, receiverName ?? connection.peer, connection.peer, connection.socket!, connection.session!, {
      ladder: this.options.broadcast.ladder,
      adapt: this.options.adapt ?? true,
      interCoded: this.options.broadcast.interCoded,
      log: this.log,
    });
    connection.viewer = viewer;
    this.viewers.set(connection, viewer);
    this.log(`${connection.who} joined from ${connection.peer}${this.options.secret ? ' (authenticated)' : ''}; ${this.viewers.size} watching`);
    this.options.broadcast.add(viewer);
  }

  /** The session is over: say why in the log, and close the connection. */
  private ended(connection: Connection, end: SenderSessionEnd): void {
    this.stopReading(connection);
    const viewer = connection.viewer;
    if (viewer) {
      viewer.close();
      this.options.broadcast.delete(viewer);
    }
    switch (end.kind) {
      case 'bye':
        break;
      case 'left':
        break;
      case 'peer-error': {
        // The receiver gave up on us: log it and close, never answer an error with an error.
        const line = `${connection.who} closed with an error: ${quote(end.reason)} (${quote(end.code)})`;
        if (viewer) this.log(line);
        else this.refusals.refused(line, 'closed by the client with an error');
        break;
      }
      case 'refused':
        if (end.error.code === 'ERR_STALLED') {
          this.log(`${connection.who} took no data for ${seconds(this.stalledViewerTimeoutMs)}: disconnected (${end.error.message})`);
        } else {
          this.refusals.refused(`refused ${connection.who}: ${connection.refusalNote ?? end.error.message}`, end.error.code);
        }
        break;
    }
    this.closeGracefully(connection);
  }

  private handshakeTimedOut(connection: Connection): void {
    const ms = this.handshakeTimeoutMs;
    if (connection.ending) return;
    if (!connection.session) {
      this.refusals.refused(`refused ${connection.peer}: no TLS handshake within ${ms} ms`, 'ERR_HANDSHAKE_TIMEOUT');
      this.stopReading(connection);
      connection.tcp.destroy();
      return;
    }
    const [reason, note] =
      this.pending.stageOf(connection) === 'hello'
        ? ['handshake not finished in time', `handshake not finished within ${ms} ms`]
        : ['no hello received in time', `no hello within ${ms} ms`];
    connection.refusalNote = note;
    this.handle(connection, connection.session.fail(new SessionError('ERR_HANDSHAKE_TIMEOUT', reason)));
  }

  /** Closes a pending connection so that a newer one fits within the limits (PendingHandshakes says which). */
  private makeRoom(connection: Connection): void {
    const { socket, session } = connection;
    if (connection.ending) {
      connection.tcp.destroy(); // refused already, and told why
      return;
    }
    const sameAddress = this.pending.countFrom(connection.address);
    const reason = `too many connections are in their handshake (${sameAddress} from ${connection.address}): the oldest made room for a newer one`;
    this.refusals.refused(`refused ${connection.peer}: ${reason}${socket ? '' : ' (closed during its TLS handshake)'}`, 'ERR_FULL');
    this.stopReading(connection);
    if (!socket || !session) {
      connection.tcp.destroy(); // no TLS yet: nothing can be said to it
      return;
    }
    for (const event of session.fail(new SessionError('ERR_FULL', reason))) {
      if (event.type === 'send') sendControl(socket, event.header);
    }
    // No grace: it is closed as soon as its error is handed to the kernel, its slot is taken already.
    socket.end(() => connection.tcp.destroy());
    setTimeout(() => connection.tcp.destroy(), CLOSE_GRACE_MS).unref();
  }

  /** Decodes (and logs) nothing more from it; the handshake deadline no longer applies. */
  private stopReading(connection: Connection): void {
    connection.ending = true;
    connection.decoder?.stop();
    clearTimeout(connection.deadline);
    this.pending.advance(connection, 'refused');
  }

  /** Ends our side after the last message; destroy() follows if the peer does not close its side. */
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

function sendControl(socket: Socket, header: Header): void {
  if (socket.destroyed || socket.writableEnded) return;
  const { head } = encodeMessage(header);
  socket.write(head);
}

/** "1234 frames sent, 5 frames dropped, last on rung 2 (1280x720 q40), link 5.1 Mbit/s". */
function describeTotals(viewer: TcpViewer): string {
  const capacity = viewer.capacityBytesPerSecond;
  return `${viewer.sent} frames sent, ${viewer.dropped} frames dropped, last on ${viewer.describeRung()}${capacity === undefined ? '' : `, link ${formatMbps(capacity)}`}`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
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
