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

describe('watching several cameras', () => {
  it("'*' watches every camera on the bus, a list only those named; several cameras share one connection", async () => {
    // One connection for three cameras, as a hub would publish them.
    const hub = await link(server.url);
    const publishers = await Promise.all(['cam-a', 'cam-b', 'cam-c'].map((camera) => CameraPublisher.start(hub, { camera, stream: SMALL_STREAM, senderName: `${camera} sender` })));
    const everything = new FrameCollector();
    const allEvents: ((event: SubscriberEvent) => void)[] = [];
    const all = await CameraSubscriber.start(await link(server.url), { cameras: '*', onFrame: everything.onFrame, onEvent: (event) => [...allEvents].forEach((listener) => listener(event)) });
    const some = new FrameCollector();
    const listed = await CameraSubscriber.start(await link(server.url), { cameras: ['cam-a', 'cam-c'], onFrame: some.onFrame });

    // '*' learns of a running camera from its first frame (and asks for its description), so publish until both have frames of each.
    let seq = 0;
    const enough = () => ['cam-a', 'cam-b', 'cam-c'].every((camera) => everything.of(camera).length >= 5) && ['cam-a', 'cam-c'].every((camera) => some.of(camera).length >= 5);
    const pacer = setInterval(() => {
      for (const publisher of publishers) publisher.publishFrame(fakeFrame(seq));
      seq++;
    }, 10);
    try {
      await everything.until(enough, 'five frames of every camera');
      await some.until(enough, 'five frames of every listed camera');
    } finally {
      clearInterval(pacer);
    }

    expect(new Set(everything.frames.map((frame) => frame.camera))).toEqual(new Set(['cam-a', 'cam-b', 'cam-c']));
    expect(new Set(some.frames.map((frame) => frame.camera))).toEqual(new Set(['cam-a', 'cam-c']));
    expect(listed.stats().map((stats) => stats.camera)).toEqual(['cam-a', 'cam-c']);
    for (const frame of [...everything.frames, ...some.frames]) expect(pictureNumber(frame)).toBe(frame.header.seq);
    for (const [subscriber, collector] of [[all, everything], [listed, some]] as const) {
      for (const stats of subscriber.stats()) {
        expect(stats).toMatchObject({ senderName: `${stats.camera} sender`, undeclaredGaps: 0, corrupt: 0 });
        // Nothing missing once the camera is followed (frames before its description are counted apart), in order.
        expect(stats.frames + stats.unannounced).toBeGreaterThanOrEqual(5);
        const seqs = collector.of(stats.camera).map((frame) => frame.header.seq);
        expect(seqs).toEqual([...new Set(seqs)].sort((a, b) => a - b));
      }
    }

    // A camera that starts later is known at once from its announcement.
    const announced = nextEvent(allEvents, (event) => event.type === 'stream' && event.camera === 'cam-d', 'the new camera');
    const late = await CameraPublisher.start(hub, { camera: 'cam-d', stream: SMALL_STREAM });
    expect(await announced).toMatchObject({ epoch: late.epoch, restarted: false });
    late.publishFrame(fakeFrame(0));
    await everything.until(() => everything.of('cam-d').length === 1, 'the new camera');
    expect(all.statsOf('cam-d')).toMatchObject({ frames: 1, unannounced: 0 });

    await Promise.all([...publishers, late].map((publisher) => publisher.close()));
    await all.close();
    await listed.close();
  });

  it('refuses bad camera names with a clear message', async () => {
    const bus = await link(server.url);
    await expect(CameraPublisher.start(bus, { camera: 'front.door', stream: SMALL_STREAM })).rejects.toThrow(
      `camera name "front.door" is not valid: it contains "."; use 1 to 64 letters, digits, '-' or '_' (the name is a NATS subject token)`,
    );
    await expect(CameraSubscriber.start(bus, { cameras: ['ok', ''], onFrame: () => undefined })).rejects.toThrow('camera name "" is not valid: it is empty');
  });
});
