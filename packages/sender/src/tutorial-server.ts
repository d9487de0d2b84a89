import net from 'node:net';
import type { Broadcast } from './broadcast';
import { RefusalLog } from './refusal-log';
import { addressOf, listenOn, portOf } from './listening';
import { TutorialViewer } from './tutorial-viewer';

export interface TutorialServerOptions {
  host: string;
  port: number;
  /** The fan-out the clients join as image outlets: they get every captured image as it is. */
  broadcast: Pick<Broadcast, 'addImageOutlet' | 'deleteImageOutlet' | 'nextViewer'>;
  /** Clients served at once; more are closed at once (the wire has no way to say why). */
  maxViewers: number;
  /** A client whose socket takes no bytes for this long is disconnected (default 30 s). */
  stalledViewerTimeoutMs?: number;
  /** Drops are logged at most this often per client (default 2 s). */
  dropLogIntervalMs?: number;
  log?: (line: string) => void;
}

const DEFAULT_STALLED_VIEWER_TIMEOUT_MS = 30_000;
/** How long a client is given to take the rest of its last frame when the sender stops. */
const CLOSE_GRACE_MS = 1000;

/**
 * Listens as the tutorial's streamer does (plain TCP, no handshake: a client that connects gets
 * frames) and serves any number of its receivers at once, each a TutorialViewer in the broadcast
 * with its own latest-wins slot. The wire has no authentication, no TLS and no way to refuse
 * with a reason; what a client sends is read and thrown away.
 */
export class TutorialServer {
  private readonly viewers = new Map<net.Socket, TutorialViewer>();
  private readonly sockets = new Set<net.Socket>();
  private readonly refusals: RefusalLog;
  private readonly log: (line: string) => void;
  private readonly stalledViewerTimeoutMs: number;
  private readonly maintenance: NodeJS.Timeout;
  private nextViewerId = 1;
  private closing = false;

  private constructor(
    private readonly server: net.Server,
    private readonly options: TutorialServerOptions,
  ) {
    this.log = options.log ?? (() => undefined);
    this.refusals = new RefusalLog(this.log);
    this.stalledViewerTimeoutMs = options.stalledViewerTimeoutMs ?? DEFAULT_STALLED_VIEWER_TIMEOUT_MS;
    server.on('connection', (socket: net.Socket) => this.accept(socket));
    const tickMs = Math.max(50, Math.min(1000, this.stalledViewerTimeoutMs / 4));
    this.maintenance = setInterval(() => this.maintain(), tickMs);
    this.maintenance.unref();
  }

  static listen(options: TutorialServerOptions): Promise<TutorialServer> {
    const server = net.createServer();
    return listenOn(server, options).then(() => new TutorialServer(server, options));
  }

  get port(): number {
    return portOf(this.server);
  }

  get address(): string {
    return addressOf(this.server);
  }

  get viewerList(): TutorialViewer[] {
    return [...this.viewers.values()];
  }

  /** Open connections (clients, and refused ones not yet closed). */
  get connectionCount(): number {
    return this.sockets.size;
  }

  /** Resolves when at least one client is connected. */
  waitForViewer(): Promise<void> {
    return this.options.broadcast.nextViewer(true);
  }

  /**
   * Stops listening and ends every client's connection after the frame it is being written (the
   * tutorial's receiver then sees the end of the stream at a frame boundary); one that does not
   * take it within CLOSE_GRACE_MS is cut off. Resolves once every socket is closed.
   */
  async close(reason: string): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.maintenance);
    this.refusals.flush();
    const serverClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const socketsClosed = [...this.sockets].map((socket) => {
      const closed = new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));
      const viewer = this.viewers.get(socket);
      if (viewer) {
        viewer.close();
        this.options.broadcast.deleteImageOutlet(viewer);
        socket.end();
        setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
      } else {
        socket.destroy();
      }
      return closed;
    });
    if (this.viewers.size > 0) this.log(`closing ${this.viewers.size} tutorial client connection(s): ${reason}`);
    await Promise.all([serverClosed, ...socketsClosed]);
  }

  private accept(socket: net.Socket): void {
    const peer = describePeer(socket);
    socket.on('error', () => undefined); // 'close' follows; the reason is logged there
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', (hadError) => this.closed(socket, hadError));
    if (this.viewers.size >= this.options.maxViewers) {
      // No message can say why on this wire: the client sees its connection closed.
      this.refusals.refused(`refused ${peer}: the sender is at its limit of ${this.options.maxViewers} tutorial clients`, 'at the client limit');
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    // The tutorial's receiver sends nothing; whatever a client sends is read and dropped.
    socket.on('data', () => undefined);
    const viewer = new TutorialViewer(this.nextViewerId++, peer, socket, {
      log: this.log,
      ...(this.options.dropLogIntervalMs === undefined ? {} : { dropLogIntervalMs: this.options.dropLogIntervalMs }),
    });
    this.viewers.set(socket, viewer);
    this.log(`tutorial client #${viewer.id} connected from ${peer}; ${this.viewers.size} watching`);
    this.options.broadcast.addImageOutlet(viewer);
  }

  private closed(socket: net.Socket, hadError: boolean): void {
    this.sockets.delete(socket);
    const viewer = this.viewers.get(socket);
    if (!viewer) return;
    this.viewers.delete(socket);
    viewer.close();
    this.options.broadcast.deleteImageOutlet(viewer);
    this.log(`tutorial client #${viewer.id} (${viewer.name}) left${hadError ? ' (connection error)' : ''}: ${describeTotals(viewer)}`);
  }

  /** Cuts off clients whose socket stopped taking bytes; logs drops held back by the rate limit. */
  private maintain(): void {
    const now = performance.now();
    for (const [socket, viewer] of this.viewers) {
      if (viewer.blockedForMs(now) > this.stalledViewerTimeoutMs) {
        this.log(`tutorial client #${viewer.id} (${viewer.name}) took no data for ${(this.stalledViewerTimeoutMs / 1000).toFixed(1)} s: disconnected (its socket took no bytes)`);
        viewer.close();
        socket.destroy();
        continue;
      }
      viewer.flushDropLog(now);
    }
  }
}

/** "1234 frames sent, 5 frames dropped, 2.1 GB". */
function describeTotals(viewer: TutorialViewer): string {
  return `${viewer.sent} frames sent, ${viewer.dropped} frames dropped, ${(viewer.bytesSent / 1e6).toFixed(1)} MB`;
}

function describePeer(socket: net.Socket): string {
  const { remoteAddress: address, remotePort: port } = socket;
  if (address === undefined) return 'an unknown address';
  return net.isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
}
