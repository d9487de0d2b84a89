import { HubCamera } from './hub/hub-camera';
import { renderReceiverMetrics } from './metrics';
import { TUTORIAL_WIRE_NOT_KNOWN } from './stats';

function camera(name: string, notKnown?: typeof TUTORIAL_WIRE_NOT_KNOWN): HubCamera {
  const hub = new HubCamera({
    name,
    transport: 'tcp',
    from: name,
    ...(notKnown ? { notKnown } : {}),
    window: false,
    record: undefined,
    recorderProcess: undefined,
    tile: undefined,
    browser: undefined,
    log: () => undefined,
    stop: () => undefined,
  });
  hub.stats.frameReceived({ payloadBytes: 1000, rung: 0, declaredDrops: 0, undeclaredGap: 0 });
  hub.stats.frameDecoded(3);
  return hub;
}

describe('renderReceiverMetrics', () => {
  it('has no drop, gap or latency series for a camera whose wire cannot tell them (the tutorial\'s), rather than zeros', () => {
    const text = renderReceiverMetrics([camera('cam'), camera('tut', TUTORIAL_WIRE_NOT_KNOWN)]);
    for (const series of ['camstream_receiver_sender_dropped_total', 'camstream_receiver_gaps_total', 'camstream_receiver_latency_seconds_count']) {
      expect(text).toContain(`${series}{camera="cam"}`);
      expect(text).not.toContain(`${series}{camera="tut"}`);
    }
    expect(text).toContain('camstream_receiver_frames_total{camera="tut"} 1');
  });
});
