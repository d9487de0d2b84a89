import { percentile, SampleWindow } from './latency';
import { SequenceCheck } from './sequence-check';

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
  /** Capture (sender's clock) to decoded image (receiver's clock). */
  latencyMs: { p50: number; p95: number; p99: number } | null;
  /** Frames received since the start, over every connection. */
  frames: number;
  /** Frames shown since the start: when recording, exactly the frames in the recording. */
  shown: number;
  /** Frames the sender skipped for this receiver because it was slow (declared in headers). */
  senderDropped: number;
  /** Frames received but never shown: a newer frame overtook them while decoders or sinks were busy. */
  skipped: number;
  /** Sequence gaps the sender did not declare: must stay 0. */
  gaps: number;
  /** Frames or connections rejected for bad bytes: CRC, sizes, schema. */
  corrupt: number;
}

/**
 * Receiver figures: a once-a-second line (text or JSON) and a final summary. Latency is the
 * wall-clock time from the sender's capture to the decoded image; exact on one machine, off by
 * the clock skew between two machines.
 */
export class ReceiverStats {
  /** Checks every frame's sequence number; its counters feed the figures. */
  readonly sequence = new SequenceCheck();
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

  frameReceived(payloadBytes: number): void {
    this.framesTotal++;
    this.bytesTotal += payloadBytes;
    this.interval.frames++;
    this.interval.bytes += payloadBytes;
  }

  frameDecoded(latencyMs: number): void {
    this.decodedTotal++;
    this.interval.decoded++;
    this.intervalLatency.add(latencyMs);
    this.overallLatency.add(latencyMs);
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
    const snapshot = this.snapshot(seconds, this.interval, this.intervalLatency.values);
    this.interval = { frames: 0, decoded: 0, shown: 0, bytes: 0, started: now };
    this.intervalLatency.clear();
    return snapshot;
  }

  /** Figures over the whole run (latency over the last 10,000 frames). */
  summary(): StatsSnapshot {
    const seconds = (performance.now() - this.started) / 1000;
    const counts = { frames: this.framesTotal, decoded: this.decodedTotal, shown: this.shownTotal, bytes: this.bytesTotal };
    return this.snapshot(seconds, counts, this.overallLatency.values);
  }

  private snapshot(
    seconds: number,
    { frames, decoded, shown, bytes }: { frames: number; decoded: number; shown: number; bytes: number },
    latency: readonly number[],
  ): StatsSnapshot {
    const safe = seconds > 0 ? seconds : 1;
    return {
      seconds: round(seconds, 3),
      fps: round(frames / safe, 1),
      decodedFps: round(decoded / safe, 1),
      shownFps: round(shown / safe, 1),
      mbps: round((bytes * 8) / safe / 1e6, 2),
      latencyMs: latency.length
        ? { p50: round(percentile(latency, 50), 2), p95: round(percentile(latency, 95), 2), p99: round(percentile(latency, 99), 2) }
        : null,
      frames: this.framesTotal,
      shown: this.shownTotal,
      senderDropped: this.sequence.declaredDrops,
      skipped: this.skipped,
      gaps: this.sequence.undeclaredGaps,
      corrupt: this.corrupt,
    };
  }
}

export function formatStatsLine(s: StatsSnapshot): string {
  const latency = s.latencyMs ? `latency p50 ${s.latencyMs.p50} / p95 ${s.latencyMs.p95} / p99 ${s.latencyMs.p99} ms` : 'latency -';
  return (
    `received ${s.fps.toFixed(1)} fps, decoded ${s.decodedFps.toFixed(1)} fps, shown ${s.shownFps.toFixed(1)} fps, ${s.mbps.toFixed(2)} Mbit/s, ${latency}, ` +
    `dropped ${s.senderDropped} by sender + ${s.skipped} skipped, gaps ${s.gaps}, corrupt ${s.corrupt}, total ${s.frames} received / ${s.shown} shown`
  );
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
