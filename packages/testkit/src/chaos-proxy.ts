import * as net from 'node:net';
import { listenOnFreePort } from './loopback';

export type Direction = 'upstream' | 'downstream';

export interface ChaosProxyOptions {
  /** Where every accepted connection is forwarded to. */
  target: { host: string; port: number };
  /** Re-split the byte stream into chunks of random sizes 1..maxChunkBytes (default: as received). */
  maxChunkBytes?: number;
  /** Delay before forwarding each chunk, in ms (default 0). */
  delayMs?: number;
  /**
   * Per connection: after exactly this many bytes went through in that direction, end the
   * receiving side (so it gets exactly those bytes, then end-of-stream) and destroy the other.
   * upstream = client to target, downstream = target to client.
   */
  cutAfterBytes?: { upstream?: number; downstream?: number };
  /** Seed for the chunk sizes, so a failing run can be repeated (default: random). */
  seed?: number;
  /** Address to listen on (default 127.0.0.1; the port is always chosen by the OS). */
  listenHost?: string;
}

/** Small fast PRNG (mulberry32); deterministic per seed, so a chaotic run can be repeated. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Gives a cut socket this long after its end was sent to close by itself before it is destroyed. */
const CUT_LINGER_MS = 1000;

/** One client connection and its upstream counterpart. */
class ProxiedConnection {
  readonly forwarded = { upstream: 0, downstream: 0 };
  private dead = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly sleepers = new Set<() => void>();

  /** Resolves once both sockets have emitted 'close'. */
  readonly closed: Promise<void>;

  constructor(
    readonly client: net.Socket,
    readonly upstream: net.Socket,
  ) {
    const socketClosed = (socket: net.Socket) => new Promise<void>((resolve) => socket.once('close', () => resolve()));
    this.closed = Promise.all([socketClosed(client), socketClosed(upstream)]).then(() => undefined);
  }

  get isDead(): boolean {
    return this.dead;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.sleepers.delete(resolve);
        resolve();
      }, ms);
      this.timers.add(timer);
      this.sleepers.add(resolve);
    });
  }

  /**
   * Ends `receiver` gracefully, so every byte written to it arrives, and destroys the other
   * side. A reset would be more abrupt but can discard bytes still in flight, and the cut must
   * land at an exact byte count.
   */
  cut(receiver: net.Socket): void {
    if (this.dead) return;
    this.stop();
    const other = receiver === this.client ? this.upstream : this.client;
    other.destroy();
    receiver.end();
    // Keep reading (and discarding) so closing never finds unread data, which would send a
    // reset; destroy it once its peer had a moment to see the end.
    receiver.removeAllListeners('data');
    receiver.on('data', () => undefined);
    receiver.resume();
    receiver.once('finish', () => {
      const linger = setTimeout(() => receiver.destroy(), CUT_LINGER_MS);
      receiver.once('close', () => clearTimeout(linger));
    });
  }

  destroy(): void {
    this.stop();
    this.client.destroy();
    this.upstream.destroy();
  }

  private stop(): void {
    this.dead = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const wake of this.sleepers) wake();
    this.sleepers.clear();
  }
}

/**
 * A TCP proxy on loopback that makes the network misbehave on purpose: it re-splits the byte
 * stream into random chunk sizes, delays chunks, cuts connections after an exact byte count or
 * on demand (cutAll). Byte order is always preserved and backpressure passes through (a slow
 * reader on one side slows the writer on the other), so any failure it causes is a real bug.
 * maxChunkBytes, delayMs and cutAfterBytes may be changed while it runs.
 */
export class ChaosProxy implements AsyncDisposable {
  readonly host: string;
  readonly port: number;
  /** Bytes forwarded over all connections, per direction. */
  readonly bytesForwarded = { upstream: 0, downstream: 0 };
  maxChunkBytes: number | undefined;
  delayMs: number;
  cutAfterBytes: { upstream?: number; downstream?: number } | undefined;
  private readonly target: { host: string; port: number };
  private readonly random: () => number;
  private readonly open = new Set<ProxiedConnection>();
  private accepted = 0;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly server: net.Server,
    host: string,
    port: number,
    options: ChaosProxyOptions,
  ) {
    this.host = host;
    this.port = port;
    this.target = { ...options.target };
    this.maxChunkBytes = options.maxChunkBytes;
    this.delayMs = options.delayMs ?? 0;
    this.cutAfterBytes = options.cutAfterBytes;
    this.random = seededRandom(options.seed ?? Math.floor(Math.random() * 2 ** 32));
    server.on('connection', (client) => this.accept(client));
  }

  static async start(options: ChaosProxyOptions): Promise<ChaosProxy> {
    if (options.maxChunkBytes !== undefined && !(Number.isInteger(options.maxChunkBytes) && options.maxChunkBytes >= 1)) {
      throw new RangeError(`maxChunkBytes must be a positive integer, got ${options.maxChunkBytes}`);
    }
    const host = options.listenHost ?? '127.0.0.1';
    // allowHalfOpen: a half-close by one side is forwarded, not turned into a full close.
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
    const port = await listenOnFreePort(server, host);
    return new ChaosProxy(server, host, port, options);
  }

  /** Connections accepted so far (open or closed). */
  get connections(): number {
    return this.accepted;
  }

  /** Connections currently open through the proxy. */
  get activeConnections(): number {
    return this.open.size;
  }

  /** Drops every current connection at once, like a network failure; new ones are still accepted. */
  cutAll(): void {
    for (const connection of this.open) connection.destroy();
  }

  /** Stops listening and destroys every socket the proxy opened or accepted. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const serverClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      const connectionsClosed = [...this.open].map((connection) => connection.closed);
      this.cutAll();
      await Promise.all([serverClosed, ...connectionsClosed]);
    })();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private accept(client: net.Socket): void {
    this.accepted++;
    if (this.closing) {
      client.destroy();
      return;
    }
    const upstream = net.connect({ ...this.target, allowHalfOpen: true });
    const connection = new ProxiedConnection(client, upstream);
    this.open.add(connection);
    for (const socket of [client, upstream]) {
      socket.on('error', () => connection.destroy());
      socket.on('close', () => {
        // Closed before its stream ended (a reset): nothing more can be delivered, so the
        // other side goes too. After a normal end the other side winds down by itself.
        if (!socket.readableEnded && !connection.isDead) connection.destroy();
      });
    }
    void connection.closed.then(() => this.open.delete(connection));
    upstream.once('connect', () => {
      this.pump(connection, client, upstream, 'upstream');
      this.pump(connection, upstream, client, 'downstream');
    });
  }

  /**
   * Copies source to destination: the source is paused while a chunk is being forwarded (and
   * while the destination is full), so backpressure passes through.
   */
  private pump(connection: ProxiedConnection, source: net.Socket, destination: net.Socket, direction: Direction): void {
    // Chunks are forwarded strictly one after another; 'end' can be emitted while the last
    // chunk is still being forwarded, so it is queued behind it rather than acted on at once.
    let queue = Promise.resolve();
    const enqueue = (step: () => void | Promise<void>) => {
      queue = queue.then(step).catch(() => connection.destroy());
    };
    source.on('data', (chunk: Buffer) => {
      source.pause();
      enqueue(async () => {
        await this.forward(connection, chunk, destination, direction);
        if (!connection.isDead) source.resume();
      });
    });
    // A half-close travels on once everything before it did.
    source.on('end', () =>
      enqueue(() => {
        if (!connection.isDead) destination.end();
      }),
    );
    source.resume();
    if (this.cutAfterBytes?.[direction] === 0) connection.cut(destination);
  }

  private async forward(connection: ProxiedConnection, chunk: Buffer, destination: net.Socket, direction: Direction): Promise<void> {
    for (const piece of this.split(chunk)) {
      if (this.delayMs > 0) await connection.sleep(this.delayMs);
      if (connection.isDead) return;
      const limit = this.cutAfterBytes?.[direction];
      const allowed = limit === undefined ? piece.length : Math.max(0, limit - connection.forwarded[direction]);
      const toForward = allowed < piece.length ? piece.subarray(0, allowed) : piece;
      if (toForward.length > 0) {
        connection.forwarded[direction] += toForward.length;
        this.bytesForwarded[direction] += toForward.length;
        if (!destination.write(toForward)) await drainedOrClosed(destination);
      }
      if (limit !== undefined && connection.forwarded[direction] >= limit) {
        connection.cut(destination);
        return;
      }
    }
  }

  private split(chunk: Buffer): Buffer[] {
    const max = this.maxChunkBytes;
    if (max === undefined || chunk.length <= 1) return [chunk];
    const pieces: Buffer[] = [];
    for (let offset = 0; offset < chunk.length; ) {
      const size = 1 + Math.floor(this.random() * max);
      pieces.push(chunk.subarray(offset, offset + size));
      offset += size;
    }
    return pieces;
  }
}

function drainedOrClosed(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}
