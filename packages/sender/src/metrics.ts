import type { CapturedFrame, FrameSource } from '@camstream/media';
import { addProcessMetrics, Histogram, PrometheusText } from '@camstream/metrics';
import type { NatsFigures } from './nats-publishing';
import type { ViewerFigures } from './stats';

/** Encode time of every rung in use for one frame, in seconds. */
const ENCODE_BUCKETS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.035, 0.05, 0.1, 0.25, 0.5];

export interface SenderMetricsSources {
  /** The TCP viewers now. */
  viewers: () => readonly ViewerFigures[];
  /** The NATS side, when there is one. */
  nats?: () => NatsFigures | undefined;
}

/**
 * The sender's /metrics (--metrics PORT): frames captured and published, encode time, each TCP
 * viewer's frames sent and dropped, the NATS side's frames published and dropped, and the process's
 * CPU and memory. Counters only go up; a viewer's series ends when it leaves.
 */
export class SenderMetrics {
  private captures = 0;
  private publishes = 0;
  private readonly encodeSeconds = new Histogram(ENCODE_BUCKETS);

  constructor(private readonly sources: SenderMetricsSources) {}

  /** The source, counting every frame it delivers. */
  countCaptures(source: FrameSource): FrameSource {
    const counted: FrameSource = {
      info: source.info,
      read: async (): Promise<CapturedFrame | null> => {
        const frame = await source.read();
        if (frame) this.captures++;
        return frame;
      },
      close: () => source.close(),
    };
    if (source.recycle) counted.recycle = (image) => source.recycle!(image);
    return counted;
  }

  /** A frame was encoded for every rung in use and offered to every outlet. */
  published(encodeMs: number): void {
    this.publishes++;
    this.encodeSeconds.observe(encodeMs / 1000);
  }

  render(): string {
    const text = new PrometheusText()
      .counter('camstream_sender_frames_captured_total', 'Frames read from the source.', this.captures)
      .counter('camstream_sender_frames_published_total', 'Frames encoded (once per rung in use) and offered to every viewer and to NATS.', this.publishes)
      .histogram('camstream_sender_encode_seconds', 'Time to encode one frame for every rung in use, in seconds.', this.encodeSeconds.snapshot());
    const viewers = this.sources.viewers();
    text.gauge('camstream_sender_viewers', 'TCP receivers getting frames.', viewers.length);
    for (const viewer of viewers) {
      const labels = { viewer: viewer.id, name: viewer.name };
      text
        .counter('camstream_sender_viewer_frames_sent_total', 'Frames written to a TCP receiver.', viewer.sent, labels)
        .counter('camstream_sender_viewer_frames_dropped_total', 'Frames skipped for a TCP receiver (its link or window was full), declared in its frame headers.', viewer.dropped, labels)
        .counter('camstream_sender_viewer_bytes_sent_total', 'Bytes of frame messages written to a TCP receiver.', viewer.bytesSent, labels);
      // The tutorial's clients have no rungs (and their drops are not declared to them, only counted).
      if ('rung' in viewer) text.gauge('camstream_sender_viewer_rung', 'Quality rung of the last frame sent to a TCP receiver (0: the stream itself).', viewer.rung, labels);
    }
    const nats = this.sources.nats?.();
    if (nats) {
      const labels = { camera: nats.camera };
      text
        .counter('camstream_sender_nats_frames_published_total', 'Frames published to NATS (each once, whatever the number of subscribers).', nats.framesPublished, labels)
        .counter('camstream_sender_nats_frames_dropped_total', 'Frames not published to NATS (disconnected, or the server behind), declared in the next frame.', nats.framesDropped, labels)
        .counter('camstream_sender_nats_bytes_published_total', 'Bytes of frame messages published to NATS.', nats.frameBytes, labels)
        .counter('camstream_sender_nats_reconnects_total', 'Times the NATS connection came back.', nats.reconnects, labels)
        .gauge('camstream_sender_nats_connected', '1 while connected to a NATS server, else 0.', nats.connected ? 1 : 0, labels);
    }
    return addProcessMetrics(text).toString();
  }
}
