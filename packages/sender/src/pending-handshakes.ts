/**
 * How far a connection got in its handshake. A connection to close to make room is chosen from
 * the lowest stage first: one already refused (only waiting to be closed), then one that has said
 * nothing yet, then one that sent its hello and is authenticating.
 */
export type HandshakeStage = 'refused' | 'silent' | 'hello';

const EVICTION_ORDER: readonly HandshakeStage[] = ['refused', 'silent', 'hello'];

export interface PendingLimits {
  /** Connections in their handshake at once, all addresses together. */
  total: number;
  /** Connections in their handshake at once from one source address. */
  perAddress: number;
}

/**
 * Bounds the connections that have not finished their handshake, in total and per source address.
 * Viewer slots are taken only once a handshake has finished, so idle sockets never count against
 * them; they count here instead, where the bound is kept by closing an older connection.
 *
 * Why a newcomer makes room instead of being refused: refusing it would let whoever holds the
 * slots (16 sockets that never send a byte) keep everyone else out until the handshake deadline,
 * and again after reconnecting. A legitimate receiver finishes its handshake in a round trip or
 * two, so when it is the newcomer it pushes out a silent socket that has been waiting longer, and
 * once its hello is read it is only pushed out after every refused and silent connection. Over
 * the per-address bound only connections of that same address are closed: a flood from one
 * address pushes out its own sockets, never those of other addresses. (All loopback clients share
 * 127.0.0.1; a legitimate one there still gets in, for the same reason.) Over the total bound the
 * address holding the most connections gives one up.
 */
export class PendingHandshakes<T> {
  /** Every pending connection, oldest first. */
  private readonly stages = new Map<T, { address: string; stage: HandshakeStage }>();
  /** The same, by address, each set oldest first. */
  private readonly byAddress = new Map<string, Set<T>>();

  constructor(private readonly limits: PendingLimits) {
    for (const [name, value] of Object.entries(limits)) {
      if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`pending handshake limit ${name} must be a whole number of at least 1, got ${value}`);
    }
  }

  get size(): number {
    return this.stages.size;
  }

  /** How many are pending from `address`. */
  countFrom(address: string): number {
    return this.byAddress.get(address)?.size ?? 0;
  }

  /**
   * Adds a new connection (stage 'silent'). Returns the connection to close to keep within the
   * limits, already removed from the set; never the newcomer.
   */
  add(connection: T, address: string): T | undefined {
    let victim: T | undefined;
    if (this.countFrom(address) >= this.limits.perAddress) victim = this.choose(this.byAddress.get(address)!);
    else if (this.stages.size >= this.limits.total) victim = this.choose(this.busiestAddress());
    if (victim !== undefined) this.remove(victim);
    this.stages.set(connection, { address, stage: 'silent' });
    let peers = this.byAddress.get(address);
    if (!peers) this.byAddress.set(address, (peers = new Set()));
    peers.add(connection);
    return victim;
  }

  /** How far a pending connection got; undefined for one that is not pending. */
  stageOf(connection: T): HandshakeStage | undefined {
    return this.stages.get(connection)?.stage;
  }

  /** Records how far a pending connection got; ignored for one that is not pending. */
  advance(connection: T, stage: HandshakeStage): void {
    const entry = this.stages.get(connection);
    if (entry) entry.stage = stage;
  }

  /** The connection finished its handshake or closed: it no longer counts. */
  remove(connection: T): void {
    const entry = this.stages.get(connection);
    if (!entry) return;
    this.stages.delete(connection);
    const peers = this.byAddress.get(entry.address)!;
    peers.delete(connection);
    if (peers.size === 0) this.byAddress.delete(entry.address);
  }

  /** The oldest connection of the lowest stage among `candidates`. */
  private choose(candidates: Iterable<T>): T {
    let best: T | undefined;
    let bestRank = Infinity;
    for (const candidate of candidates) {
      const rank = EVICTION_ORDER.indexOf(this.stages.get(candidate)!.stage);
      if (rank < bestRank) {
        best = candidate;
        bestRank = rank;
        if (rank === 0) break;
      }
    }
    return best as T;
  }

  private busiestAddress(): Set<T> {
    let busiest: Set<T> | undefined;
    for (const peers of this.byAddress.values()) if (!busiest || peers.size > busiest.size) busiest = peers;
    return busiest!;
  }
}
