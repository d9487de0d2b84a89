import { Histogram } from '@camstream/metrics';
import type { Rung } from '@camstream/protocol';
import { percentile, SampleWindow } from './latency';

/** Latency buckets of /metrics, in seconds: fine around a frame interval, coarse past half a second. */
export const LATENCY_BUCKETS_SECONDS = [0.005, 0.01, 0.02, 0.033, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5];

/** The quality rung frames arrive on (PROTOCOL.md 4.4). */
export interface RungFigure {
  /** 0 is the stream itself; higher is lower quality. */
  index: number;
  /** The lowest rung the sender announced (0 when it announced none). */
  lowest: number;
  width: number;
  height: number;
  quality?: number;
}

export interface StatsSnapshot {
  /** Seconds covered by the rates and latencies below. */
  seconds: number;
  /** Frames received (and checked) per second. */
  fps: number;
  /** Frames decoded per second. */
  decodedFps: number;
  /** Frames shown per second: handed to every sink (window, recorder, browser) and taken by all of them. */
  shownFps: number;
  /** Payload megabits received per second. */
  mbps: number;
  /** Capture (sender's clock) to decoded image (receiver's clock); null before any frame, or when the wire cannot tell (notKnown). */
  latencyMs: { p50: number; p95: number; p99: number } | null;
  /** Frames received since the start, over every connection. */
  frames: number;
  /** Frames shown since the start: when recording, exactly the frames in the recording. */
  shown: number;
  /** Frames the sender skipped for this receiver because it was slow (declared in headers); null when the wire cannot tell. */
  senderDropped: number | null;
  /** Frames received but never shown: a newer frame overtook them while decoders or sinks were busy. */
  skipped: number;
  /** Sequence gaps the sender did not declare, with no broken connection to explain them: must stay 0; null when the wire has no sequence numbers. */
  gaps: number | null;
  /** Frames lost with a broken connection (NATS: across a reconnect or an outage), counted apart from gaps. */
  lostInTransport: number;
  /** Frames or connections rejected for bad bytes: CRC, sizes, schema. */
  corrupt: number;
  /** Messages refused unread (NATS: unsigned, wrongly signed, replayed, of an old sender run). */
  refused: number;
  /** Interruptions of the stream, reported when frames came again (NATS). */
  outages: number;
  /** The rung of the latest frame; null before the first frame. */
  rung: RungFigure | null;
  /** Frames since the start that arrived on a lower rung (rung > 0), scaled back to the stream's size. */
  lowerRungFrames: number;
  /** Only when the wire cannot give some figures: why each of them is null. */
  notKnown?: NotKnown;
}

/** Figures a wire cannot give, each with the reason (shown instead of a number, never as 0). */
export interface NotKnown {
  latencyMs?: string;
  senderDropped?: string;
  gaps?: string;
}

/** What the tutorial's wire (a length and a pickle per frame, nothing else) cannot tell a receiver. */
export const TUTORIAL_WIRE_NOT_KNOWN: Readonly<NotKnown> = {
  latencyMs: 'the tutorial wire carries no capture time',
  senderDropped: 'the tutorial wire declares no drops',
  gaps: 'the tutorial wire carries no sequence numbers',
};

export interface ReceiverStatsOptions {
  /** Figures the wire cannot give (TUTORIAL_WIRE_NOT_KNOWN): reported as null with the reason. */
  notKnown?: NotKnown;
}

/** What the session found out about a received frame (its checks). */
export interface ReceivedFrameFigures {
  payloadBytes: number;
  rung: number;
  declaredDrops: number;
  undeclaredGap: number;
}

/**
 * Totals a transport counts itself, from every message it read (over NATS: the subscriber's
 * CameraTracker, which also sees the frames its latest-wins slot skipped); when given, they stand
 * in for this class's own counts of frames, drops, gaps, losses, refusals and outages.
 */
export interface TransportTotals {
  frames: number;
  declaredDrops: number;
  undeclaredGaps: number;
  lostInTransport: number;
  corrupt: number;
  refused: number;
  /** Frames replaced by a newer one before the receiver took them. */
  skipped: number;
  outages: number;
}

/**
 * Receiver figures: a once-a-second line (text or JSON) and a final summary. Latency is the
 * wall-clock time from the sender's capture to the decoded image; exact on one machine, off by
 * the clock skew between two machines.
 */
export class ReceiverStats {
  /** Sums of what the session counted per frame (PROTOCOL.md 4.2), over every connection. */
  readonly sequence = { declaredDrops: 0, undeclaredGaps: 0 };
  corrupt = 0;
  skipped = 0;
  private framesTotal = 0;
  private shownTotal = 0;
  private interval = { frames: 0, decoded: 0, shown: 0, bytes: 0, started: performance.now() };
  private readonly intervalLatency = new SampleWindow(10_000);
  private readonly overallLatency = new SampleWindow(10_000);
  private readonly started = performance.now();
  private decodedTotal = 0;
  private bytesTotal = 0;
  private lowerRungTotal = 0;
  private rungs: readonly Rung[] = [];
  private currentRung: number | undefined;
  private readonly notKnown: NotKnown | undefined;
  private transport: TransportTotals | undefined;
  private transportFramesAtInterval = 0;
  /** The connection attempt waiting for its first decoded frame, if any (connecting()). */
  private firstPicture: { since: number; report: (ms: number) => void } | undefined;
  /** Capture to decoded image, in seconds, since the start (for /metrics). */
  readonly latency = new Histogram(LATENCY_BUCKETS_SECONDS);

  constructor(options: ReceiverStatsOptions = {}) {
    const reasons = Object.entries(options.notKnown ?? {}).filter(([, reason]) => reason);
    this.notKnown = reasons.length > 0 ? Object.fromEntries(reasons) : undefined;
  }

  /** Use a transport's own totals (see TransportTotals) from now on; call before each report. */
  syncTransport(totals: TransportTotals): void {
    this.transport = totals;
  }

  /** A new connection's stream: its rungs (rungs[0] is the stream itself). */
  streamStarted(rungs: readonly Rung[]): void {
    this.rungs = rungs;
    this.currentRung = undefined;
  }

  frameReceived({ payloadBytes, rung, declaredDrops, undeclaredGap }: ReceivedFrameFigures): void {
    this.framesTotal++;
    this.bytesTotal += payloadBytes;
    this.interval.frames++;
    this.interval.bytes += payloadBytes;
    this.sequence.declaredDrops += declaredDrops;
    this.sequence.undeclaredGaps += undeclaredGap;
    this.currentRung = rung;
    if (rung > 0) this.lowerRungTotal++;
  }

  /**
   * A connection attempt starts now: the next decoded frame calls `report` once, with the
   * milliseconds since this call (what a viewer waits for a picture: connecting, handshake, the
   * decoder's start-up and, for H.264, the keyframe it starts at).
   */
  connecting(report: (ms: number) => void): void {
    this.firstPicture = { since: performance.now(), report };
  }

  frameDecoded(latencyMs: number): void {
    this.decodedTotal++;
    const firstPicture = this.firstPicture;
    if (firstPicture) {
      this.firstPicture = undefined;
      firstPicture.report(performance.now() - firstPicture.since);
    }
    this.interval.decoded++;
    // A wire without capture times stamps frames when they arrive: that is no latency.
    if (this.notKnown?.latencyMs) return;
    this.intervalLatency.add(latencyMs);
    this.overallLatency.add(latencyMs);
    this.latency.observe(latencyMs / 1000);
  }

  /** A frame was handed to every sink and each of them took it. */
  frameShown(): void {
    this.shownTotal++;
    this.interval.shown++;
  }

  /** Figures since the previous call, then starts a new interval. */
  takeInterval(): StatsSnapshot {
    const now = performance.now();
    const seconds = (now - this.interval.started) / 1000;
    const frames = this.transport ? this.transport.frames - this.transportFramesAtInterval : this.interval.frames;
    const snapshot = this.snapshot(seconds, { ...this.interval, frames }, this.intervalLatency.values);
    this.interval = { frames: 0, decoded: 0, shown: 0, bytes: 0, started: now };
    this.transportFramesAtInterval = this.transport?.frames ?? 0;
    this.intervalLatency.clear();
    return snapshot;
  }

  /** Figures over the whole run (latency over the last 10,000 frames). */
  summary(): StatsSnapshot {
    const seconds = (performance.now() - this.started) / 1000;
    const counts = { frames: this.transport?.frames ?? this.framesTotal, decoded: this.decodedTotal, shown: this.shownTotal, bytes: this.bytesTotal };
    return this.snapshot(seconds, counts, this.overallLatency.values);
  }

  private snapshot(
    seconds: number,
    { frames, decoded, shown, bytes }: { frames: number; decoded: number; shown: number; bytes: number },
    latency: readonly number[],
  ): StatsSnapshot {
    const safe = seconds > 0 ? seconds : 1;
    const transport = this.transport;
    return {
      seconds: round(seconds, 3),
      fps: round(frames / safe, 1),
      decodedFps: round(decoded / safe, 1),
      shownFps: round(shown / safe, 1),
      mbps: round((bytes * 8) / safe / 1e6, 2),
      latencyMs: latency.length
        ? { p50: round(percentile(latency, 50), 2), p95: round(percentile(latency, 95), 2), p99: round(percentile(latency, 99), 2) }
        : null,
      frames: transport?.frames ?? this.framesTotal,
      shown: this.shownTotal,
      senderDropped: this.notKnown?.senderDropped ? null : (transport?.declaredDrops ?? this.sequence.declaredDrops),
      skipped: this.skipped + (transport?.skipped ?? 0),
      gaps: this.notKnown?.gaps ? null : (transport?.undeclaredGaps ?? this.sequence.undeclaredGaps),
      lostInTransport: transport?.lostInTransport ?? 0,
      corrupt: this.corrupt + (transport?.corrupt ?? 0),
      refused: transport?.refused ?? 0,
      outages: transport?.outages ?? 0,
      rung: this.rungFigure(),
      lowerRungFrames: this.lowerRungTotal,
      ...(this.notKnown ? { notKnown: { ...this.notKnown } } : {}),
    };
  }

  private rungFigure(): RungFigure | null {
    const index = this.currentRung;
    const rung = index === undefined ? undefined : this.rungs[index];
    if (index === undefined || rung === undefined) return null;
    return { index, lowest: this.rungs.length - 1, width: rung.width, height: rung.height, ...(rung.quality === undefined ? {} : { quality: rung.quality }) };
  }
}

/** `transport`: show what a lossy transport counts (NATS), even when it is 0; by default only when it is not. */
export function formatStatsLine(s: StatsSnapshot, transport = s.lostInTransport > 0 || s.refused > 0 || s.outages > 0): string {
  const notKnown = s.notKnown ?? {};
  const latency = notKnown.latencyMs
    ? `latency n/a (${notKnown.latencyMs})`
    : s.latencyMs
      ? `latency p50 ${s.latencyMs.p50} / p95 ${s.latencyMs.p95} / p99 ${s.latencyMs.p99} ms`
      : 'latency -';
  const dropped = s.senderDropped === null ? `dropped n/a by sender (${notKnown.senderDropped ?? 'not known'})` : `dropped ${s.senderDropped} by sender`;
  const gaps = s.gaps === null ? `gaps n/a (${notKnown.gaps ?? 'not known'})` : `gaps ${s.gaps}`;
  return (
    `received ${s.fps.toFixed(1)} fps, decoded ${s.decodedFps.toFixed(1)} fps, shown ${s.shownFps.toFixed(1)} fps, ${s.mbps.toFixed(2)} Mbit/s, ${latency}, ` +
    `${formatRung(s.rung)} (${s.lowerRungFrames} on lower rungs), ` +
    `${dropped} + ${s.skipped} skipped, ${gaps}, corrupt ${s.corrupt}, ` +
    // Only a transport that can lose or refuse messages (NATS) has these.
    (transport ? `lost ${s.lostInTransport} in transport, refused ${s.refused}, outages ${s.outages}, ` : '') +
    `total ${s.frames} received / ${s.shown} shown`
  );
}

/** "rung 3/5 960x540 q60": the rung of the latest frame, of the rungs 0..lowest. */
export function formatRung(rung: RungFigure | null): string {
  if (!rung) return 'rung -';
  return `rung ${rung.index}/${rung.lowest} ${rung.width}x${rung.height}${rung.quality === undefined ? '' : ` q${rung.quality}`}`;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
