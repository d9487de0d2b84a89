/**
 * The slow-link cells' figures, from what the processes wrote: every decoded frame of a receiver
 * (time, capture -> decoded latency, rung), the proxy's once-a-second byte counts, the sender's
 * per-viewer flow-control state. Pure functions of those records.
 */
import { percentile } from './percentile';
import { round } from './usage';

/** One decoded frame, as receiver-driver.ts --frames-out writes it. */
export interface DecodedFrame {
  /** Wall clock when it was decoded, ms since the epoch. */
  at: number;
  latencyMs: number;
  rung: number;
}

/** One line of the chaos proxy's --stats-json output. */
export interface ProxyStatsLine {
  time: string;
  downBytes: number;
  upBytes: number;
  downLimitMbps: number | null;
}

/** One viewer in a VIEWERS line of sender-driver.ts --viewer-stats. */
export interface ViewerState {
  id: number;
  name: string;
  rung: number;
  sent: number;
  dropped: number;
  bytesSent: number;
  windowBytes: number;
  inFlightBytes: number;
  inFlightFrames: number;
  /** null: not measured yet; -1: faster than arrival spans can measure (unbounded). */
  capacityBytesPerSecond: number | null;
}

export interface ViewerStatsLine {
  at: number;
  viewers: ViewerState[];
}

export interface WindowFigures {
  frames: number;
  /** Decoded frames per second over the window. */
  fps: number;
  p50: number;
  p99: number;
  max: number;
  /** Frames per rung. */
  rungs: Record<string, number>;
}

export function framesBetween(frames: readonly DecodedFrame[], from: number, to: number): DecodedFrame[] {
  return frames.filter((f) => f.at >= from && f.at < to);
}

/** Decoded fps, latency percentiles and rungs of the frames decoded in [from, to). */
export function windowFigures(frames: readonly DecodedFrame[], from: number, to: number): WindowFigures {
  const inside = framesBetween(frames, from, to);
  const latencies = inside.map((f) => f.latencyMs);
  const rungs: Record<string, number> = {};
  for (const f of inside) rungs[f.rung] = (rungs[f.rung] ?? 0) + 1;
  return {
    frames: inside.length,
    fps: round(inside.length / ((to - from) / 1000), 1),
    p50: round(percentile(latencies, 50), 1),
    p99: round(percentile(latencies, 99), 1),
    max: round(latencies.length ? Math.max(...latencies) : NaN, 1),
    rungs,
  };
}

/**
 * How long after `since` the latency came back under `limitMs` for good: the time of the first
 * frame after which no frame decoded before `until` was at or over the limit. NaN if it never did.
 */
export function recoveryMs(frames: readonly DecodedFrame[], since: number, until: number, limitMs: number): number {
  const after = framesBetween(frames, since, until);
  let lastBad = -1;
  after.forEach((f, i) => {
    if (f.latencyMs >= limitMs) lastBad = i;
  });
  const firstGood = after[lastBad + 1];
  return firstGood === undefined ? NaN : round(firstGood.at - since, 0);
}

/**
 * How long after `since` every frame was on rung 0 and every 1 s window (stepped by 100 ms) held
 * at least `minFrames` decoded frames, until `until`. NaN if that never happened.
 */
export function fullQualityAfterMs(frames: readonly DecodedFrame[], since: number, until: number, minFrames: number): number {
  const after = framesBetween(frames, since, until);
  let lastLow = -1;
  after.forEach((f, i) => {
    if (f.rung !== 0) lastLow = i;
  });
  const rungBack = after[lastLow + 1]?.at;
  if (rungBack === undefined) return NaN;
  // The latest 1 s window that ended with too few frames: full rate is back after it.
  let fpsBack = since;
  for (let end = since + 1000; end <= until; end += 100) {
    if (framesBetween(after, end - 1000, end).length < minFrames) fpsBack = end;
  }
  if (fpsBack + 1000 > until) return NaN;
  return round(Math.max(rungBack, fpsBack) - since, 0);
}

/** Link utilisation over [from, to]: bytes the proxy forwarded down / (rate x time), from its once-a-second lines. */
export function linkUse(lines: readonly ProxyStatsLine[], from: number, to: number, bytesPerSecond: number): { share: number; seconds: number } {
  const timed = lines.map((l) => ({ at: Date.parse(l.time), bytes: l.downBytes }));
  const nearest = (t: number) => timed.reduce((best, l) => (Math.abs(l.at - t) < Math.abs(best.at - t) ? l : best), timed[0]!);
  if (timed.length < 2) return { share: NaN, seconds: 0 };
  const a = nearest(from);
  const b = nearest(to);
  const seconds = (b.at - a.at) / 1000;
  if (seconds <= 0) return { share: NaN, seconds: 0 };
  return { share: round((b.bytes - a.bytes) / (bytesPerSecond * seconds), 3), seconds: round(seconds, 1) };
}

/** Medians of one viewer's flow-control state over [from, to). */
export function flowState(lines: readonly ViewerStatsLine[], viewerName: string, from: number, to: number) {
  const states = lines.filter((l) => l.at >= from && l.at < to).flatMap((l) => l.viewers.filter((v) => v.name === viewerName));
  const med = (xs: number[]) => (xs.length ? round(percentile(xs, 50), 0) : NaN);
  return {
    samples: states.length,
    windowBytes: med(states.map((s) => s.windowBytes)),
    inFlightBytes: med(states.map((s) => s.inFlightBytes)),
    inFlightFrames: med(states.map((s) => s.inFlightFrames)),
    /** Of the samples with a finite capacity; NaN when there were none (unbounded or not measured). */
    capacityBytesPerSecond: med(states.map((s) => s.capacityBytesPerSecond ?? -1).filter((c) => c >= 0)),
    rung: med(states.map((s) => s.rung)),
  };
}
