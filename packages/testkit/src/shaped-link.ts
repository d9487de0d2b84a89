import type * as net from 'node:net';

/** upstream = client to target, downstream = target to client (video flows downstream). */
export type Direction = 'upstream' | 'downstream';

/** One phase of a link's capacity schedule. */
export interface LinkPhase {
  /** How long the phase lasts, in ms; only the last phase may leave it out (it then lasts until the end). */
  forMs?: number;
  /** Capacity during the phase in bytes per second (Infinity: no limit, 0: the link carries nothing)... */
  bytesPerSecond?: number;
  /** ...or a fraction of the link's base bytesPerSecond (1 = the base rate). Give exactly one of the two. */
  fraction?: number;
}

/**
 * An emulated slow link in one direction. Every connection gets its own link with these
 * settings (as if each client sat behind its own line); rate changes apply to all of them.
 * Bytes go: source socket -> queue (at most bufferBytes; the proxy stops reading the source
 * while it is full, so back-pressure reaches the sender's kernel buffers) -> token bucket
 * (bytesPerSecond, burstBytes), paced every few ms -> delay line (oneWayDelayMs) -> destination.
 */
export interface LinkOptions {
  /** Capacity in bytes per second (default Infinity: no limit; 0: the link carries nothing). */
  bytesPerSecond?: number;
  /**
   * Propagation delay added after the rate limit, in ms (default 0): each byte leaves this long
   * after it passed the bottleneck. A 20 ms round trip is 10 ms each way. Unlike the proxy's
   * per-chunk delayMs this does not slow the transfer down: the link keeps carrying bytes while
   * earlier ones are on their way.
   */
  oneWayDelayMs?: number;
  /** Token bucket depth in bytes (default: the larger of 16 KiB and 10 ms at the current rate). */
  burstBytes?: number;
  /** Most bytes queued in front of the bottleneck, per connection (default 64 KiB). */
  bufferBytes?: number;
  /** Capacity over time; see ChaosProxyOptions.scheduleStart for when it starts. After its last timed phase the base rate applies again. */
  schedule?: readonly LinkPhase[];
}

/** Reported whenever a link direction's capacity changes (schedule phase or setRate). */
export interface RateChange {
  direction: Direction;
  bytesPerSecond: number;
  /** Index of the schedule phase that set it; undefined when setRate did, or the schedule ended. */
  phase: number | undefined;
  /** performance.now() when the change took effect. */
  at: number;
}

export const DEFAULT_LINK_BUFFER_BYTES = 64 * 1024;
/** The smallest default burst: about one large TCP send, so slow links still forward whole segments. */
const MIN_BURST_BYTES = 16 * 1024;
/** The default burst holds this much time at the current rate, so timer jitter does not cost throughput. */
const BURST_MS = 10;
/** How often a link with queued bytes forwards its next piece: small steps look like a real link to a receiver timing arrivals. */
const PACE_INTERVAL_MS = 2;
/**
 * The smallest piece forwarded (unless less is queued): about one packet's payload. A slow link
 * then delivers packet-sized pieces, not a trickle of a few bytes per timer tick.
 */
const MIN_PIECE_BYTES = 1448;
/**
 * Most bytes on their way through the delay line, like a TCP window: without it, an unlimited
 * link with a delay would read its source as fast as loopback allows and hold all of it.
 */
export const MAX_IN_FLIGHT_BYTES = 4 * 1024 * 1024;

function checkRate(value: number, what: string): void {
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw new RangeError(`${what} must be a number of bytes per second >= 0 (Infinity for no limit), got ${value}`);
  }
}

function checkPositiveInteger(value: number | undefined, what: string): void {
  if (value !== undefined && !(Number.isInteger(value) && value >= 1)) {
    throw new RangeError(`${what} must be a positive integer, got ${value}`);
  }
}

/** Throws a RangeError naming the first bad setting; `name` prefixes it (e.g. "link.downstream"). */
export function validateLinkOptions(options: LinkOptions, name: string): void {
  if (options.bytesPerSecond !== undefined) checkRate(options.bytesPerSecond, `${name}.bytesPerSecond`);
  const delay = options.oneWayDelayMs;
  if (delay !== undefined && !(Number.isFinite(delay) && delay >= 0)) {
    throw new RangeError(`${name}.oneWayDelayMs must be a finite number of ms >= 0, got ${delay}`);
  }
  checkPositiveInteger(options.burstBytes, `${name}.burstBytes`);
  checkPositiveInteger(options.bufferBytes, `${name}.bufferBytes`);
  const schedule = options.schedule;
  if (schedule === undefined) return;
  if (!Array.isArray(schedule) || schedule.length === 0) throw new RangeError(`${name}.schedule must be a non-empty array of phases`);
  schedule.forEach((phase, index) => {
    const where = `${name}.schedule[${index}]`;
    const last = index === schedule.length - 1;
    if (phase.forMs === undefined) {
      if (!last) throw new RangeError(`${where}.forMs is missing: only the last phase may last until the end`);
    } else if (!(Number.isFinite(phase.forMs) && phase.forMs > 0)) {
      throw new RangeError(`${where}.forMs must be a finite number of ms > 0, got ${phase.forMs}`);
    }
    if ((phase.bytesPerSecond === undefined) === (phase.fraction === undefined)) {
      throw new RangeError(`${where} needs exactly one of bytesPerSecond and fraction`);
    }
    if (phase.bytesPerSecond !== undefined) checkRate(phase.bytesPerSecond, `${where}.bytesPerSecond`);
    if (phase.fraction !== undefined && !(Number.isFinite(phase.fraction) && phase.fraction >= 0)) {
      throw new RangeError(`${where}.fraction must be a finite number >= 0, got ${phase.fraction}`);
    }
  });
}

/**
 * The settings of one direction, shared by that direction's links on every connection: the
 * current rate, the schedule that changes it, and the capacity offered so far.
 */
export class LinkControl {
  readonly baseBytesPerSecond: number;
  readonly oneWayDelayMs: number;
  readonly bufferBytes: number;
  private readonly configuredBurst: number | undefined;
  private readonly schedule: readonly LinkPhase[] | undefined;
  private rate: number;
  private phaseTimer: NodeJS.Timeout | undefined;
  /** Capacity offered while limited, and time spent unlimited, up to rateSince. */
  private capacityBefore = 0;
  private unlimitedMsBefore = 0;
  private rateSince = performance.now();
  private readonly links = new Set<ShapedLink>();

  constructor(
    readonly direction: Direction,
    options: LinkOptions,
    private readonly onRateChange: ((change: RateChange) => void) | undefined,
  ) {
    this.baseBytesPerSecond = options.bytesPerSecond ?? Infinity;
    this.rate = this.baseBytesPerSecond;
    this.oneWayDelayMs = options.oneWayDelayMs ?? 0;
    this.bufferBytes = options.bufferBytes ?? DEFAULT_LINK_BUFFER_BYTES;
    this.configuredBurst = options.burstBytes;
    this.schedule = options.schedule?.map((phase) => ({ ...phase }));
  }

  get bytesPerSecond(): number {
    return this.rate;
  }

  get burstBytes(): number {
    if (this.configuredBurst !== undefined) return this.configuredBurst;
    return Number.isFinite(this.rate) ? Math.max(MIN_BURST_BYTES, Math.ceil((this.rate * BURST_MS) / 1000)) : MIN_BURST_BYTES;
  }

  /** Whether bytes can go straight through (no rate limit, no delay), as they did before links existed. */
  get transparent(): boolean {
    return this.rate === Infinity && this.oneWayDelayMs === 0;
  }

  get hasSchedule(): boolean {
    return this.schedule !== undefined;
  }

  /**
   * What the link offered since the proxy started: bytes it could have carried while it had a
   * limit, and ms it had none (which no byte count can express).
   */
  capacity(now = performance.now()): { capacityBytes: number; unlimitedMs: number } {
    const elapsed = now - this.rateSince;
    const limited = Number.isFinite(this.rate);
    return {
      capacityBytes: this.capacityBefore + (limited ? (this.rate * elapsed) / 1000 : 0),
      unlimitedMs: this.unlimitedMsBefore + (limited ? 0 : elapsed),
    };
  }

  add(link: ShapedLink): void {
    this.links.add(link);
  }

  remove(link: ShapedLink): void {
    this.links.delete(link);
  }

  /** Sets the rate now; the caller decides what happens to the schedule. */
  setRate(bytesPerSecond: number, phase: number | undefined = undefined): void {
    checkRate(bytesPerSecond, `${this.direction} rate`);
    const now = performance.now();
    // Tokens earned so far were earned at the old rate.
    for (const link of this.links) link.refill(now);
    ({ capacityBytes: this.capacityBefore, unlimitedMs: this.unlimitedMsBefore } = this.capacity(now));
    this.rateSince = now;
    this.rate = bytesPerSecond;
    for (const link of this.links) link.service();
    this.onRateChange?.({ direction: this.direction, bytesPerSecond, phase, at: now });
  }

  /** (Re)starts the schedule at its first phase; does nothing without one. */
  startSchedule(): void {
    this.stopSchedule();
    if (this.schedule) this.enterPhase(0);
  }

  stopSchedule(): void {
    clearTimeout(this.phaseTimer);
    this.phaseTimer = undefined;
  }

  private enterPhase(index: number): void {
    const phase = this.schedule?.[index];
    if (!phase) {
      this.phaseTimer = undefined;
      this.setRate(this.baseBytesPerSecond);
      return;
    }
    this.setRate(phase.bytesPerSecond ?? this.baseBytesPerSecond * (phase.fraction ?? 1), index);
    if (phase.forMs !== undefined) this.endPhaseAfter(index, performance.now() + phase.forMs);
  }

  /** Timers may fire a fraction of a ms early by performance.now(): a phase lasts at least its forMs. */
  private endPhaseAfter(index: number, endsAt: number): void {
    this.phaseTimer = setTimeout(() => {
      if (performance.now() < endsAt) this.endPhaseAfter(index, endsAt);
      else this.enterPhase(index + 1);
    }, Math.max(1, Math.ceil(endsAt - performance.now())));
  }
}

/**
 * One direction of one connection through an emulated slow link: a bounded queue, a token
 * bucket paced every PACE_INTERVAL_MS, then a delay line, then the destination socket.
 */
export class ShapedLink {
  /** Bytes written to the destination so far. */
  delivered = 0;
  /** The most bytes this link held at once (queue plus delay line). */
  peakBuffered = 0;
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private readonly wire: Array<{ due: number; bytes: Buffer }> = [];
  private inFlight = 0;
  private tokens: number;
  private refilledAt = performance.now();
  private paceTimer: NodeJS.Timeout | undefined;
  private wireTimer: NodeJS.Timeout | undefined;
  private outputBlocked = false;
  private stopped = false;
  private roomWaiters: Array<() => void> = [];
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly control: LinkControl,
    private readonly destination: net.Socket,
    private readonly onDelivered: (bytes: number) => void,
  ) {
    this.tokens = control.burstBytes;
    control.add(this);
  }

  /** Bytes the link holds now: queued in front of the bottleneck plus on their way through the delay line. */
  get buffered(): number {
    return this.queued + this.inFlight;
  }

  /**
   * Takes `bytes` in. Resolves once all of it is queued: while the queue is full it waits, and
   * the caller (which keeps its source paused until then) stops reading.
   */
  async send(bytes: Buffer): Promise<void> {
    if (this.control.transparent && this.buffered === 0 && !this.outputBlocked) {
      // Nothing to shape: straight through, waiting for the destination as a plain pipe does.
      if (!this.write(bytes)) await this.outputDrained();
      return;
    }
    let rest = bytes;
    while (rest.length > 0 && !this.stopped) {
      const room = this.control.bufferBytes - this.queued;
      if (room <= 0) {
        await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
        continue;
      }
      const part = rest.length <= room ? rest : rest.subarray(0, room);
      rest = rest.subarray(part.length);
      this.queue.push(part);
      this.queued += part.length;
      this.peakBuffered = Math.max(this.peakBuffered, this.buffered);
      this.service();
    }
  }

  /** Resolves once every byte sent so far has been written to the destination (or the link stopped). */
  drained(): Promise<void> {
    if (this.buffered === 0 || this.stopped) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Adds the tokens earned since the last refill at the current rate. */
  refill(now: number): void {
    const rate = this.control.bytesPerSecond;
    const burst = this.control.burstBytes;
    this.tokens = rate === Infinity ? Infinity : Math.min(burst, this.tokens + (rate * (now - this.refilledAt)) / 1000);
    this.refilledAt = now;
  }

  /** Moves what the rate allows onto the wire, delivers what is due, and arranges the next step. */
  service(): void {
    if (this.stopped) return;
    const now = performance.now();
    this.refill(now);
    this.deliverDue(now);
    if (!this.outputBlocked && this.tokens >= Math.min(this.queued, MIN_PIECE_BYTES)) {
      const allowed = Math.floor(Math.min(this.tokens, this.queued, MAX_IN_FLIGHT_BYTES - this.inFlight));
      if (allowed > 0) {
        this.tokens -= allowed;
        this.wire.push({ due: now + this.control.oneWayDelayMs, bytes: this.dequeue(allowed) });
        this.inFlight += allowed;
        this.wakeRoomWaiters();
        this.deliverDue(now);
      }
    }
    this.arrangeTimers(now);
    if (this.buffered === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** Stops for good: timers cleared, nothing more is written, waiters released. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.paceTimer);
    clearTimeout(this.wireTimer);
    this.control.remove(this);
    this.wakeRoomWaiters();
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private arrangeTimers(now: number): void {
    const rate = this.control.bytesPerSecond;
    const paceable = this.queued > 0 && !this.outputBlocked && rate > 0 && this.inFlight < MAX_IN_FLIGHT_BYTES;
    if (paceable && !this.paceTimer) {
      // Next step when the next piece has earned its tokens, and not sooner than the pacing interval.
      const shortfall = Math.min(this.queued, MIN_PIECE_BYTES) - this.tokens;
      const wait = Math.max(PACE_INTERVAL_MS, Math.ceil((shortfall * 1000) / rate));
      this.paceTimer = setTimeout(() => {
        this.paceTimer = undefined;
        this.service();
      }, wait);
    }
    const head = this.wire[0];
    if (head && !this.outputBlocked && !this.wireTimer) {
      // Timers may fire a fraction of a ms early by performance.now(); deliverDue checks again.
      this.wireTimer = setTimeout(
        () => {
          this.wireTimer = undefined;
          this.service();
        },
        Math.max(1, Math.ceil(head.due - now)),
      );
    }
  }

  private deliverDue(now: number): void {
    while (!this.outputBlocked && !this.stopped) {
      const head = this.wire[0];
      if (!head || head.due > now) return;
      this.wire.shift();
      this.inFlight -= head.bytes.length;
      if (!this.write(head.bytes)) {
        this.outputBlocked = true;
        void this.outputDrained().then(() => {
          this.outputBlocked = false;
          this.service();
        });
      }
    }
  }

  private write(bytes: Buffer): boolean {
    this.delivered += bytes.length;
    this.onDelivered(bytes.length);
    return this.destination.write(bytes);
  }

  private outputDrained(): Promise<void> {
    return drainedOrClosed(this.destination);
  }

  private dequeue(count: number): Buffer {
    const parts: Buffer[] = [];
    let needed = count;
    while (needed > 0) {
      const head = this.queue[0]!;
      if (head.length <= needed) {
        this.queue.shift();
        parts.push(head);
        needed -= head.length;
      } else {
        parts.push(head.subarray(0, needed));
        this.queue[0] = head.subarray(needed);
        needed = 0;
      }
    }
    this.queued -= count;
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, count);
  }

  private wakeRoomWaiters(): void {
    if (this.queued < this.control.bufferBytes || this.stopped) for (const resolve of this.roomWaiters.splice(0)) resolve();
  }
}

/** Resolves on the socket's next 'drain', or once it closes. */
export function drainedOrClosed(socket: net.Socket): Promise<void> {
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
