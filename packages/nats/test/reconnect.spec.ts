import { startNatsServer } from '@camstream/testkit';
import { CameraPublisher, CameraSubscriber, type Outage, type SubscriberEvent } from '../src';
import { fakeFrame, FrameCollector, link, nextEvent, SMALL_STREAM } from './helpers';

// One server, the usual deployment: it restarts, and both sides must come back by themselves.
describe('a single nats-server restarting under a stream', () => {
  it('the publisher and the subscriber reconnect with backoff, frames resume, the outage is reported, no undeclared gap', async () => {
    await using server = await startNatsServer();
    const publisherLink = await link(server.url);
    const publisher = await CameraPublisher.start(publisherLink, { camera: 'porch', stream: SMALL_STREAM });
    const collector = new FrameCollector();
    const events: ((event: SubscriberEvent) => void)[] = [];
    const seen: SubscriberEvent[] = [];
    const subscriber = await CameraSubscriber.start(await link(server.url), {
      cameras: ['porch'],
      onFrame: collector.onFrame,
      onEvent: (event) => {
        seen.push(event);
        [...events].forEach((listener) => listener(event));
      },
    });
    let seq = 0;
    const pacer = setInterval(() => publisher.publishFrame(fakeFrame(seq++)), 1000 / 30);
    try {
      await collector.until(() => collector.frames.length >= 15, 'half a second of frames');
      const outageEnded = nextEvent(events, (event) => event.type === 'outage-end', 'the outage to end', 30_000);
      await server.restart();
      const { outage } = (await outageEnded) as { outage: Outage };
      const count = collector.frames.length;
      await collector.until(() => collector.frames.length >= count + 15, 'frames after the restart', 30_000);
      console.log(`single server restarted: ${outage.cause}, ${outage.lengthMs.toFixed(0)} ms without frames, ${outage.lostFrames} lost in transport, ${outage.declaredDrops} dropped by the sender`);
      expect(outage.cause).toBe('receiver-reconnected');
      expect(publisher.stats.reconnects).toBe(1);
      expect(seen.filter((event) => event.type === 'link').map((event) => (event as { state: string }).state)).toEqual(['disconnected', 'reconnected']);
      expect(subscriber.statsOf('porch')).toMatchObject({ undeclaredGaps: 0, corrupt: 0, senderRuns: 1 });
      // What went missing across the outage is all accounted for: declared by the sender or lost with the connections.
      const stats = subscriber.statsOf('porch')!;
      expect(stats.declaredDrops + stats.lostInTransport).toBe(stats.lastSeq! - (stats.frames - 1) - (collector.frames[0]!.header.seq));
    } finally {
      clearInterval(pacer);
      await publisher.close();
      await subscriber.close();
    }
  });
});
