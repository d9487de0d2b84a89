import { addProcessMetrics, PrometheusText } from '@camstream/metrics';
import type { HubCamera } from './hub/hub-camera';

/**
 * The receiver's /metrics: per camera (label `camera`) the frames received, shown and skipped,
 * the drops the sender declared, frames lost in transport, undeclared gaps, corrupt and refused
 * messages, outages, the capture-to-decode latency histogram, the last second's rate and whether
 * it sends; then the process's CPU and memory. The counters are the stats' own totals.
 */
export function renderReceiverMetrics(cameras: readonly HubCamera[]): string {
  const text = new PrometheusText();
  for (const camera of cameras) {
    const totals = camera.stats.summary();
    const labels = { camera: camera.name };
    text
      .counter('camstream_receiver_frames_total', 'Frames received and checked.', totals.frames, labels)
      .counter('camstream_receiver_frames_shown_total', 'Frames handed to every sink (window, recorder, browser) and taken by all of them.', totals.shown, labels)
      .counter('camstream_receiver_frames_skipped_total', 'Frames received but never shown: a newer one overtook them (latest-wins).', totals.skipped, labels);
    // A wire that cannot tell them (the tutorial's) has no such series, rather than a 0.
    if (totals.senderDropped !== null) text.counter('camstream_receiver_sender_dropped_total', 'Frames the sender declared it dropped.', totals.senderDropped, labels);
    text.counter('camstream_receiver_lost_in_transport_total', 'Frames lost with a broken connection (NATS reconnects and outages), apart from gaps.', totals.lostInTransport, labels);
    if (totals.gaps !== null) text.counter('camstream_receiver_gaps_total', 'Frames missing that nobody declared and no broken connection explains (should stay 0).', totals.gaps, labels);
    text
      .counter('camstream_receiver_corrupt_total', 'Frames or messages with bad bytes (CRC, sizes, schema, undecodable).', totals.corrupt, labels)
      .counter('camstream_receiver_outages_total', 'Interruptions of the stream, counted when frames came again (NATS).', totals.outages, labels);
    const refusals = camera.refusals?.();
    if (refusals) {
      text
        .counter('camstream_receiver_refused_total', 'Messages refused unread, by reason (NATS).', refusals.unsigned, { ...labels, reason: 'unsigned' })
        .counter('camstream_receiver_refused_total', 'Messages refused unread, by reason (NATS).', refusals.badSignature, { ...labels, reason: 'bad-signature' })
        .counter('camstream_receiver_refused_total', 'Messages refused unread, by reason (NATS).', refusals.replayed, { ...labels, reason: 'replayed' })
        .counter('camstream_receiver_refused_total', 'Messages refused unread, by reason (NATS).', refusals.staleEpoch, { ...labels, reason: 'stale-epoch' });
    }
    if (!totals.notKnown?.latencyMs) {
      text.histogram('camstream_receiver_latency_seconds', 'Capture (sender clock) to decoded image (receiver clock), in seconds.', camera.stats.latency.snapshot(), labels);
    }
    text
      .gauge('camstream_receiver_fps', 'Frames received per second over the last second.', camera.lastInterval?.fps ?? 0, labels)
      .gauge('camstream_receiver_camera_up', '1 while the camera sends frames; 0 before its first frame and while it is stopped.', camera.liveness.state === 'live' ? 1 : 0, labels);
  }
  return addProcessMetrics(text).toString();
}
