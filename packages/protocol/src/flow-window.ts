/**
 * The sender's flow-control window for one receiver (PROTOCOL.md section 4.3): how many bytes of
 * frames may be unacknowledged at once, sized from the receiver's measured link capacity and a
 * latency target. Frames that do not fit wait in the sender's latest-wins slot, where a newer
 * frame replaces them (a declared drop), instead of in kernel buffers, where they would age.
 *
 * Socket-free: it is fed what was sent and acknowledged, with the time, and answers questions.
 */

/** What a receiver reports about one frame it received (the `ack` message). */
export interface AckReport {
  seq: number;
  /** Milliseconds from the read that brought the frame's first byte to the read that completed it. */
  spanMs: number;
  /** Bytes of the frame that arrived after that first read. */
  spanBytes: number;
}

export interface FlowWindowOptions {
  /** Queueing delay the window allows on top of the measured round trip, in ms (default 50). */
  queueTargetMs?: number;
  /** Window before the first measurement, in bytes (default 128 KiB). */
  initialWindowBytes?: number;
}

interface InFlight {
  readonly seq: number;
  readonly bytes: number;
  readonly sentAt: number;
}

interface CapacitySample {
  readonly at: number;
  /** Bytes per millisecond. */
  readonly rate: number;
}

/** Capacity is the median of the samples of the last second... */
const SLOW_SAMPLE_WINDOW_MS = 1000;
/** ...or of the last three, whichever is lower: a link that gets slower is noticed within 3 frames. */
const FAST_SAMPLE_COUNT = 3;
/** Measured (finite) samples are kept this long for measuredCapacityBytesPerSecond: a few keyframes of an H.264 stream. */
const MEASURED_SAMPLE_WINDOW_MS = 5000;
/** Spans shorter than this are below what timers resolve well: they only bound the capacity from below. */
const MIN_MEASURED_SPAN_MS = 2;
/** The round trip is the minimum over this long, so that a queue does not pass for distance. */
const RTT_WINDOW_MS = 10_000;
const MAX_SAMPLES = 64;
/** The delivery rate is what was acknowledged over this long. */
const DELIVERY_WINDOW_MS = 300;
/**
 * The window is at most this much more than what was delivered lately: arrival spans can flatter a
 * link whose shaper lets bursts through, the delivered bytes cannot. While the link keeps up it grows
 * by this factor per delivery window; once it does not, the queue settles near 1.25 x (round trip + target).
 */
const DELIVERY_HEADROOM = 1.25;

export class UnexpectedAckError extends Error {
  readonly code = 'ERR_UNEXPECTED';
}

export class FlowWindow {
  private readonly queueTargetMs: number;
  private readonly initialWindowBytes: number;
  /** Sent and not yet acknowledged, oldest first (acknowledgements come in order). */
  private readonly inFlight: InFlight[] = [];
  private inFlightTotal = 0;
  private readonly samples: CapacitySample[] = [];
  private readonly measuredSamples: CapacitySample[] = [];
  private readonly rttSamples: Array<{ at: number; ms: number }> = [];
  private capacity: number | undefined;
  private sustainedCapacity: number | undefined;
  private lastAckedSeq = -1;
  private ackedBytesTotal = 0;
  /** Acknowledged bytes with the time of their ack, over the last DELIVERY_WINDOW_MS. */
  private readonly deliveries: Array<{ at: number; bytes: number }> = [];
  private firstAckAt: number | undefined;
  private lastAckAt: number | undefined;

  constructor(options: FlowWindowOptions = {}) {
    this.queueTargetMs = options.queueTargetMs ?? 50;
    this.initialWindowBytes = options.initialWindowBytes ?? 128 * 1024;
  }

  /** Bytes sent and not acknowledged. */
  get inFlightBytes(): number {
    return this.inFlightTotal;
  }

  get inFlightFrames(): number {
    return this.inFlight.length;
  }

  /** Bytes acknowledged since the start. */
  get ackedBytes(): number {
    return this.ackedBytesTotal;
  }

  /**
   * Estimated capacity of the path to the receiver in bytes per second; undefined before the first
   * ack, Infinity while frames arrive faster than spans can measure (loopback, a fast LAN).
   */
  get capacityBytesPerSecond(): number | undefined {
    return this.capacity === undefined ? undefined : this.capacity * 1000;
  }

  /**
   * The median capacity over the last second, in bytes per second: steadier than
   * capacityBytesPerSecond, which also follows the last three frames so that the window shrinks
   * at once on a link that slows down. A rung is left on this one: a dip of three frames is no
   * reason to lower the picture.
   */
  get sustainedCapacityBytesPerSecond(): number | undefined {
    return this.sustainedCapacity === undefined ? undefined : this.sustainedCapacity * 1000;
  }

  /**
   * The median of the finite samples of the last 5 s, bytes per second; undefined when there were
   * none. Frames that crossed too fast to time are left out: behind a shaper that lets a burst
   * through, small frames say nothing of the rate, and the larger ones (an H.264 stream's
   * keyframes) still measure it.
   */
  get measuredCapacityBytesPerSecond(): number | undefined {
    return this.measuredSamples.length === 0 ? undefined : median(this.measuredSamples.map((s) => s.rate)) * 1000;
  }

  /** The smallest round trip seen lately, in ms (undefined before the first ack). */
  get roundTripMs(): number | undefined {
    let min: number | undefined;
    for (const s of this.rttSamples) min = min === undefined ? s.ms : Math.min(min, s.ms);
    return min;
  }

  /**
   * Bytes per second acknowledged over the last 300 ms (since the first ack, if more recent):
   * what the link really delivered, whatever the arrival spans say. Undefined before the first ack.
   */
  get deliveredBytesPerSecond(): number | undefined {
    if (this.firstAckAt === undefined || this.lastAckAt === undefined) return undefined;
    const span = Math.min(DELIVERY_WINDOW_MS, Math.max(this.lastAckAt - this.firstAckAt, 1));
    let bytes = 0;
    for (const d of this.deliveries) if (this.lastAckAt - d.at < span || d.at === this.lastAckAt) bytes += d.bytes;
    return (bytes / span) * 1000;
  }

  /**
   * Unacknowledged bytes allowed: capacity times (round trip + queue target), where the capacity is
   * the measured one, but no more than 1.25 times what was delivered lately.
   */
  get windowBytes(): number {
    if (this.capacity === undefined) return this.initialWindowBytes;
    const delivered = this.deliveredBytesPerSecond;
    const rate = delivered === undefined ? this.capacity : Math.min(this.capacity, (DELIVERY_HEADROOM * delivered) / 1000);
    return Number.isFinite(rate) ? Math.ceil(rate * ((this.roundTripMs ?? 0) + this.queueTargetMs)) : this.initialWindowBytes;
  }

  /** Whether a frame of `bytes` may go now. One frame may always go when nothing is in flight. */
  canSend(bytes: number): boolean {
    return this.inFlight.length === 0 || this.inFlightTotal + bytes <= this.windowBytes;
  }

  sent(seq: number, bytes: number, now: number): void {
    const last = this.inFlight[this.inFlight.length - 1];
    if (last !== undefined && seq <= last.seq) throw new RangeError(`frame ${seq} sent after frame ${last.seq}`);
    this.inFlight.push({ seq, bytes, sentAt: now });
    this.inFlightTotal += bytes;
  }

  /**
   * Takes a receiver's acknowledgement. Acknowledgements are cumulative (TCP delivers in order):
   * one for frame N also settles every earlier frame still in flight. An ack for a frame that was
   * never sent, or that was already acknowledged, is a protocol error.
   */
  acked(ack: AckReport, now: number): void {
    const index = this.inFlight.findIndex((f) => f.seq === ack.seq);
    if (index < 0) {
      const why = ack.seq <= this.lastAckedSeq ? 'was already acknowledged' : 'was never sent';
      throw new UnexpectedAckError(`ack for frame ${ack.seq}, which ${why}`);
    }
    const frame = this.inFlight[index]!;
    let bytes = 0;
    for (const settled of this.inFlight.splice(0, index + 1)) {
      this.inFlightTotal -= settled.bytes;
      bytes += settled.bytes;
    }
    this.ackedBytesTotal += bytes;
    this.addDelivery(now, bytes);
    this.lastAckedSeq = ack.seq;
    this.addRoundTrip(now, now - frame.sentAt - ack.spanMs);
    this.addCapacity(now, ack);
  }

  /** How long the oldest unacknowledged frame has waited for its ack (0 when none is in flight). */
  oldestUnackedMs(now: number): number {
    const oldest = this.inFlight[0];
    return oldest === undefined ? 0 : now - oldest.sentAt;
  }

  private addDelivery(now: number, bytes: number): void {
    this.firstAckAt ??= now;
    this.lastAckAt = now;
    this.deliveries.push({ at: now, bytes });
    while (this.deliveries.length > 1 && now - this.deliveries[0]!.at >= DELIVERY_WINDOW_MS) this.deliveries.shift();
  }

  private addRoundTrip(now: number, ms: number): void {
    this.rttSamples.push({ at: now, ms: Math.max(0, ms) });
    while (this.rttSamples.length > 1 && (now - this.rttSamples[0]!.at > RTT_WINDOW_MS || this.rttSamples.length > MAX_SAMPLES)) {
      this.rttSamples.shift();
    }
  }

  private addCapacity(now: number, ack: AckReport): void {
    // A frame that arrived within a couple of milliseconds says only that the path is faster than
    // arrival spans can measure: counted as unbounded, so that the window follows the delivered
    // rate alone (a fixed lower bound would cap a fast stream at ~500 of its frames a second).
    const rate = ack.spanMs >= MIN_MEASURED_SPAN_MS && ack.spanBytes > 0 ? ack.spanBytes / ack.spanMs : Infinity;
    this.samples.push({ at: now, rate });
    if (Number.isFinite(rate)) this.measuredSamples.push({ at: now, rate });
    while (this.measuredSamples.length > 0 && (now - this.measuredSamples[0]!.at > MEASURED_SAMPLE_WINDOW_MS || this.measuredSamples.length > MAX_SAMPLES)) {
      this.measuredSamples.shift();
    }
    while (this.samples.length > FAST_SAMPLE_COUNT && (now - this.samples[0]!.at > SLOW_SAMPLE_WINDOW_MS || this.samples.length > MAX_SAMPLES)) {
      this.samples.shift();
    }
    const all = this.samples.map((s) => s.rate);
    this.sustainedCapacity = median(all);
    this.capacity = Math.min(this.sustainedCapacity, median(all.slice(-FAST_SAMPLE_COUNT)));
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
