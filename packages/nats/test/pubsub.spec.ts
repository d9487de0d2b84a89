import { prepareFrame } from '@camstream/protocol';
import { type NatsServer, startNatsServer } from '@camstream/testkit';
import { CameraPublisher, CameraSubscriber, type SubscriberEvent } from '../src';
import { fakeFrame, FrameCollector, link, nextEvent, pictureNumber, SMALL_STREAM } from './helpers';

let server: NatsServer;

beforeAll(async () => {
  server = await startNatsServer();
});

afterAll(async () => {
  await server.dispose();
});

async function subscriberOf(camera: string, name: string) {
  const collector = new FrameCollector();
  const events: ((event: SubscriberEvent) => void)[] = [];
  const subscriber = await CameraSubscriber.start(await link(server.url, { name }), {
    cameras: [camera],
    onFrame: collector.onFrame,
    onEvent: (event) => events.forEach((listener) => listener(event)),
  });
  return { collector, events, subscriber };
}

describe('one publisher, several subscribers, one real nats-server', () => {
  it('checks every frame at every subscriber and hands over the newest, publishing each frame once', async () => {
    const publisherLink = await link(server.url, { name: 'pubsub-publisher' });
    // A stream with lower rungs for TCP receivers: NATS carries the stream itself, announced without them.
    const publisher = await CameraPublisher.start(publisherLink, { camera: 'porch', stream: { ...SMALL_STREAM, rungs: [{ width: 32, height: 24 }] }, senderName: 'porch-pi' });
    const subscribers = await Promise.all([1, 2, 3].map((i) => subscriberOf('porch', `pubsub-subscriber-${i}`)));
    // Each learns the stream from a describe reply, before any frame.
    for (const { events, subscriber } of subscribers) {
      if (!subscriber.statsOf('porch')?.stream) await nextEvent(events, (event) => event.type === 'stream', 'the stream');
      expect(subscriber.statsOf('porch')).toMatchObject({ stream: SMALL_STREAM, senderName: 'porch-pi', epoch: publisher.epoch });
    }

    const count = 40;
    for (let seq = 0; seq < count; seq++) expect(publisher.publishFrame(fakeFrame(seq))).toBe('published');
    for (const { collector } of subscribers) await collector.until(() => collector.frames.at(-1)?.header.seq === count - 1, `frame ${count - 1}`);

    for (const { collector, subscriber } of subscribers) {
      // Every frame checked and accepted, in order, none missing...
      expect(subscriber.statsOf('porch')).toMatchObject({ frames: count, lastSeq: count - 1, corrupt: 0, undeclaredGaps: 0, lostInTransport: 0, declaredDrops: 0, held: 0 });
      // ...and handed over latest-wins: frames that arrived together went as the newest of them.
      const { delivered, skipped } = subscriber.statsOf('porch')!;
      expect(delivered + skipped).toBe(count);
      expect(collector.frames).toHaveLength(delivered);
      const seqs = collector.frames.map((frame) => frame.header.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(new Set(seqs).size).toBe(seqs.length);
      for (const frame of collector.frames) {
        // The picture is the one published as this frame.
        expect(pictureNumber(frame)).toBe(frame.header.seq);
        expect(frame).toMatchObject({ camera: 'porch', epoch: publisher.epoch, rung: 0, lostInTransport: 0, undeclaredGap: 0 });
        expect(frame.arrivedAt).toBeGreaterThanOrEqual(frame.header.captureTime);
      }
    }

    // The server saw each frame once from the publisher, and sent it to each of the three subscribers.
    const { framesPublished, frameBytes, announcements, describeReplies } = publisher.stats;
    expect(framesPublished).toBe(count);
    expect(describeReplies).toBe(3);
    const connections = (await server.connz()).connections;
    const fromPublisher = connections.find((connection) => connection.name === 'pubsub-publisher')!;
    expect(fromPublisher.in_msgs).toBe(framesPublished + announcements + describeReplies);
    expect(fromPublisher.in_bytes).toBeLessThan(frameBytes * 1.1);
    for (let i = 1; i <= 3; i++) {
      const toSubscriber = connections.find((connection) => connection.name === `pubsub-subscriber-${i}`)!;
      expect(toSubscriber.out_msgs).toBeGreaterThanOrEqual(count);
      expect(toSubscriber.out_bytes).toBeGreaterThanOrEqual(frameBytes);
    }
    await publisher.close();
    await Promise.all(subscribers.map(({ subscriber }) => subscriber.close()));
  });

  it('declares the frames the caller skipped, so that receivers count them as declared drops, not gaps', async () => {
    const publisher = await CameraPublisher.start(await link(server.url), { camera: 'yard', stream: SMALL_STREAM });
    const { collector, events, subscriber } = await subscriberOf('yard', 'yard-subscriber');
    if (!subscriber.statsOf('yard')?.stream) await nextEvent(events, (event) => event.type === 'stream', 'the stream');
    // One at a time, so that each frame reaches the consumer (frames that arrive together go as the newest).
    for (const seq of [0, 1, 4, 5, 9]) {
      publisher.publishFrame(fakeFrame(seq));
      await collector.until(() => collector.frames.at(-1)?.header.seq === seq, `frame ${seq}`);
    }
    expect(collector.frames.map((frame) => [frame.header.seq, frame.header.dropped, frame.declaredDrops])).toEqual([
      [0, 0, 0],
      [1, 0, 0],
      [4, 2, 2],
      [5, 2, 0],
      [9, 5, 3],
    ]);
    expect(subscriber.statsOf('yard')).toMatchObject({ frames: 5, declaredDrops: 5, undeclaredGaps: 0, lostInTransport: 0 });
    expect(publisher.stats.framesDropped).toBe(5);
    expect(() => publisher.publishFrame(fakeFrame(9))).toThrow('frame 9 offered after frame 9: sequence numbers must increase');
    const onRung = prepareFrame(Buffer.alloc(32 * 24 * 3), { seq: 10, captureTime: 0, width: 32, height: 24, channels: 3, encoding: 'raw-bgr', rung: 1 });
    expect(() => publisher.publishFrame(onRung)).toThrow('frame 10 is on rung 1: NATS carries each camera\'s stream itself (rung 0) only');
    await publisher.close();
    await subscriber.close();
  });
});
