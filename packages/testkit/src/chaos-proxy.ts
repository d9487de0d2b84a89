import * as net from 'node:net';
import { listenOnFreePort } from './loopback';
import { LinkControl, ShapedLink, validateLinkOptions, type Direction, type LinkOptions, type RateChange } from './shaped-link';

export type { Direction, LinkOptions, LinkPhase, RateChange } from './shaped-link';

const DIRECTIONS: readonly Direction[] = ['upstream', 'downstream'];

export interface ChaosProxyOptions {
  /** Where every accepted connection is forwarded to. */
  target: { host: string; port: number };
  /** Re-split the byte stream into chunks of random sizes 1..maxChunkBytes (default: as received). */
  maxChunkBytes?: number;
  /**
   * Delay before forwarding each chunk, in ms (default 0): a stall per chunk, which also slows
   * the transfer down. For a link's propagation delay use link.*.oneWayDelayMs.
   */
  delayMs?: number;
  /**
   * Per connection: after exactly this many bytes went through in that direction, end the
   * receiving side (so it gets exactly those bytes, then end-of-stream) and destroy the other.
   * upstream = client to target, downstream = target to client.
   */
  cutAfterBytes?: { upstream?: number; downstream?: number };
  /** Seed for the chunk sizes, so a failing run can be repeated (default: random). */
  seed?: number;
  /** Address to listen on (default 127.0.0.1). */
  listenHost?: string;
  /** Port to listen on (default 0: a free one chosen by the OS). */
  listenPort?: number;
  /**
   * A slow link per direction: rate limit, one-way delay, small buffers, a schedule (see
   * LinkOptions). Each connection gets its own link; the chaos above (chunks, delayMs, cuts)
   * happens before the link. Default: no limit, no delay.
   */
  link?: { upstream?: LinkOptions; downstream?: LinkOptions };
  /**
   * When the links' schedules start: 'start' (default) when the proxy listens,
   * 'first-connection' when it accepts its first connection, 'manual' on startSchedule().
   */
  scheduleStart?: 'start' | 'first-connection' | 'manual';
  /** Called whenever a direction's rate changes (schedule phase, end of schedule, setRate). */
  onRateChange?: (change: RateChange) => void;
}

/** What one open connection has been through, per direction. */
export interface ConnectionStats {
  /** 1 for the first connection the proxy accepted, and so on. */
  id: number;
  /** Bytes written to the receiving side. */
  forwarded: { upstream: number; downstream: number };
  /** Bytes the proxy holds now (queue plus delay line; a socket read of up to 64 KiB in hand comes on top). */
  buffered: { upstream: number; downstream: number };
  /** The most it held at once. */
  peakBuffered: { upstream: number; downstream: number };
  /** The link's current capacity (Infinity: no limit). */
  bytesPerSecond: { upstream: number; downstream: number };
}

/**
 * One direction's totals, for link utilisation: between two snapshots, forwarded / capacity.
 * Each connection has a link of its own, so this is one link's utilisation while one connection
 * carries the traffic; and it holds only while unlimitedMs did not change (the link had a limit).
 */
export interface LinkUsage {
  /** performance.now() when the snapshot was taken. */
  at: number;
  forwardedBytes: number;
  /** Bytes one connection's link could have carried since the proxy started, while it had a limit. */
  capacityBytes: number;
  /** ms the link had no limit since the proxy started. */
  unlimitedMs: number;
  bytesPerSecond: number;
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
  /** Bytes let into each direction's link so far, for cutAfterBytes. */
  readonly admitted = { upstream: 0, downstream: 0 };
  readonly links: Record<Direction, ShapedLink>;
  private dead = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly sleepers = new Set<() => void>();

  /** Resolves once both sockets have emitted 'close'. */
  readonly closed: Promise<void>;

  constructor(
    readonly id: number,
    readonly client: net.Socket,
    readonly upstream: net.Socket,
    controls: Record<Direction, LinkControl>,
    onDelivered: (direction: Direction, bytes: number) => void,
  ) {
    const linkFor = (direction: Direction) =>
      new ShapedLink(controls[direction], direction === 'upstream' ? upstream : client, (bytes) => {
        this.forwarded[direction] += bytes;
        onDelivered(direction, bytes);
      });
    this.links = { upstream: linkFor('upstream'), downstream: linkFor('downstream') };
    const socketClosed = (socket: net.Socket) => new Promise<void>((resolve) => socket.once('close', () => resolve()));
    this.closed = Promise.all([socketClosed(client), socketClosed(upstream)]).then(() => {
      // A connection that ended normally was never stopped; its links must not outlive it.
      this.links.upstream.stop();
      this.links.downstream.stop();
    });
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
    this.links.upstream.stop();
    this.links.downstream.stop();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const wake of this.sleepers) wake();
    this.sleepers.clear();
  }
}

/**
 * A TCP proxy on loopback that makes the network misbehave on purpose: it re-splits the byte
 * stream into random chunk sizes, delays chunks, cuts connections after an exact byte count or
 * on demand (cutAll), and emulates a slow link per direction (rate limit with small buffers of
 * its own, one-way delay, a schedule of rates; see LinkOptions). Byte order is always preserved
 * and backpressure passes through (a slow reader on one side slows the writer on the other),
 * so any failure it causes is a real bug. maxChunkBytes, delayMs and cutAfterBytes may be
 * changed while it runs, and the rate with setRate(). The CLI is packages/testkit/bin/chaos-proxy.
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
  private readonly controls: Record<Direction, LinkControl>;
  private readonly scheduleStart: 'start' | 'first-connection' | 'manual';
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
    this.controls = {
      upstream: new LinkControl('upstream', options.link?.upstream ?? {}, options.onRateChange),
      downstream: new LinkControl('downstream', options.link?.downstream ?? {}, options.onRateChange),
    };
    this.scheduleStart = options.scheduleStart ?? 'start';
    server.on('connection', (client) => this.accept(client));
    if (this.scheduleStart === 'start') this.startSchedule();
  }

  static async start(options: ChaosProxyOptions): Promise<ChaosProxy> {
    if (options.maxChunkBytes !== undefined && !(Number.isInteger(options.maxChunkBytes) && options.maxChunkBytes >= 1)) {
      throw new RangeError(`maxChunkBytes must be a positive integer, got ${options.maxChunkBytes}`);
    }
    for (const direction of DIRECTIONS) {
      const link = options.link?.[direction];
      if (link !== undefined) validateLinkOptions(link, `link.${direction}`);
    }
    const schedulesFrom = ['start', 'first-connection', 'manual'];
    if (options.scheduleStart !== undefined && !schedulesFrom.includes(options.scheduleStart)) {
      throw new RangeError(`scheduleStart must be one of ${schedulesFrom.join(', ')}, got ${String(options.scheduleStart)}`);
    }
    const listenPort = options.listenPort ?? 0;
    if (!(Number.isInteger(listenPort) && listenPort >= 0 && listenPort <= 65535)) {
      throw new RangeError(`listenPort must be an integer 0..65535, got ${listenPort}`);
    }
    const host = options.listenHost ?? '127.0.0.1';
    // allowHalfOpen: a half-close by one side is forwarded, not turned into a full close.
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
    const port = listenPort === 0 ? await listenOnFreePort(server, host) : await listenOn(server, host, listenPort);
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

  /** A direction's current capacity in bytes per second (Infinity: no limit). */
  rate(direction: Direction): number {
    return this.controls[direction].bytesPerSecond;
  }

  /**
   * Sets a direction's capacity now (bytes per second; Infinity: no limit, 0: nothing passes),
   * for every connection. It replaces that direction's schedule, which stops.
   */
  setRate(direction: Direction | 'both', bytesPerSecond: number): void {
    const directions = direction === 'both' ? DIRECTIONS : [direction];
    if (!directions.every((d) => DIRECTIONS.includes(d))) throw new RangeError(`direction must be upstream, downstream or both, got ${String(direction)}`);
    for (const d of directions) {
      this.controls[d].stopSchedule();
      this.controls[d].setRate(bytesPerSecond);
    }
  }

  /** (Re)starts every direction's schedule at its first phase, now. */
  startSchedule(): void {
    for (const direction of DIRECTIONS) this.controls[direction].startSchedule();
  }

  /** Totals of one direction over all connections, for link utilisation (see LinkUsage). */
  linkUsage(direction: Direction): LinkUsage {
    const at = performance.now();
    const control = this.controls[direction];
    return { at, forwardedBytes: this.bytesForwarded[direction], ...control.capacity(at), bytesPerSecond: control.bytesPerSecond };
  }

  /** Per-direction figures of every open connection. */
  connectionStats(): ConnectionStats[] {
    const perDirection = <T>(value: (direction: Direction) => T) => ({ upstream: value('upstream'), downstream: value('downstream') });
    return [...this.open].map((connection) => ({
      id: connection.id,
      forwarded: { ...connection.forwarded },
      buffered: perDirection((d) => connection.links[d].buffered),
      peakBuffered: perDirection((d) => connection.links[d].peakBuffered),
      bytesPerSecond: perDirection((d) => this.controls[d].bytesPerSecond),
    }));
  }

  /** Drops every current connection at once, like a network failure; new ones are still accepted. */
  cutAll(): void {
    for (const connection of this.open) connection.destroy();
  }

  /** Stops listening and destroys every socket the proxy opened or accepted. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const direction of DIRECTIONS) this.controls[direction].stopSchedule();
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
    if (this.accepted === 1 && this.scheduleStart === 'first-connection') this.startSchedule();
    const upstream = net.connect({ ...this.target, allowHalfOpen: true });
    // A link forwards each piece as it is due. With Nagle's algorithm on, a small piece waits for
    // the peer's ACK of the previous one, which a peer that also sends (acks of its own) delays by
    // up to 40 ms: through a 500 kB/s link, 4 KiB then arrived over 44 ms instead of 6.
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const connection = new ProxiedConnection(this.accepted, client, upstream, this.controls, (direction, bytes) => {
      this.bytesForwarded[direction] += bytes;
    });
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
    // A half-close travels on once everything before it did, the link's delay line included.
    source.on('end', () =>
      enqueue(async () => {
        await connection.links[direction].drained();
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
      const allowed = limit === undefined ? piece.length : Math.max(0, limit - connection.admitted[direction]);
      const toForward = allowed < piece.length ? piece.subarray(0, allowed) : piece;
      const link = connection.links[direction];
      if (toForward.length > 0) {
        connection.admitted[direction] += toForward.length;
        await link.send(toForward);
      }
      if (limit !== undefined && connection.admitted[direction] >= limit) {
        // The cut lands after the last allowed byte came out of the link.
        await link.drained();
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

/** Listens on a given port (listenOnFreePort is for port 0). */
function listenOn(server: net.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(new Error(`cannot listen on ${host}:${port}: ${error.message}`, { cause: error }));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve(port);
    });
  });
}
