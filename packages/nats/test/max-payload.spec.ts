import { randomBytes } from 'node:crypto';
import { prepareFrame, type StreamDescription } from '@camstream/protocol';
import { startNatsServer } from '@camstream/testkit';
import { CameraPublisher, CameraSubscriber, type PayloadTooLargeError, type SubscriberEvent } from '../src';
import { fakeFrame, FrameCollector, link, nextEvent, pictureNumber } from './helpers';

const RAW_720P: StreamDescription = { width: 1280, height: 720, fps: 30, pixelFormat: 'bgr24', encoding: 'raw-bgr' };
const JPEG_720P: StreamDescription = { ...RAW_720P, encoding: 'jpeg', quality: 80 };

function jpegSized(seq: number, bytes: number) {
  // Not a real JPEG: the transport checks sizes and CRCs, never decodes.
  return prepareFrame(randomBytes(bytes), { seq, captureTime: Date.now(), width: 1280, height: 720, channels: 3, encoding: 'jpeg' });
}

describe("the server's max_payload", () => {
  it("refuses a raw stream whose frames cannot fit NATS's default 1 MiB, naming the server setting", async () => {
    await using server = await startNatsServer({ maxPayload: 1024 * 1024 });
    const bus = await link(server.url);
    expect(bus.maxPayload).toBe(1024 * 1024);
    const error = (await CameraPublisher.start(bus, { camera: 'raw', stream: RAW_720P }).catch((e: unknown) => e)) as PayloadTooLargeError;
    expect(error.code).toBe('ERR_NATS_PAYLOAD');
    expect(error.message).toBe(
      `raw 1280x720 frames are 2764800 bytes each, more than NATS at 127.0.0.1:${server.port} accepts (max_payload 1048576 bytes): raise max_payload in the nats-server configuration (to at least 3MB; at most 64MB) or send a compressed encoding (jpeg)`,
    );
  });

  it('refuses one compressed frame too large to fit, and declares it dropped in the next frame', async () => {
    await using server = await startNatsServer({ maxPayload: 1024 * 1024 });
    const publisher = await CameraPublisher.start(await link(server.url), { camera: 'jpeg', stream: JPEG_720P });
    const collector = new FrameCollector();
    const events: ((event: SubscriberEvent) => void)[] = [];
    const subscriber = await CameraSubscriber.start(await link(server.url), { cameras: ['jpeg'], onFrame: collector.onFrame, onEvent: (event) => [...events].forEach((l) => l(event)) });
    if (!subscriber.statsOf('jpeg')?.stream) await nextEvent(events, (event) => event.type === 'stream', 'the stream');

    expect(publisher.publishFrame(jpegSized(0, 45_000))).toBe('published');
    await collector.until(() => collector.frames.length === 1, 'frame 0');
    expect(() => publisher.publishFrame(jpegSized(1, 1_500_000))).toThrow(/^frame 1 is a 1500\d{3}-byte message, more than NATS at 127\.0\.0\.1:\d+ accepts \(max_payload 1048576 bytes\): raise max_payload/);
    expect(publisher.publishFrame(jpegSized(2, 45_000))).toBe('published');
    await collector.until(() => collector.frames.length === 2, 'frames 0 and 2');
    expect(collector.frames.map((frame) => [frame.header.seq, frame.header.dropped, frame.declaredDrops, frame.undeclaredGap])).toEqual([
      [0, 0, 0, 0],
      [2, 1, 1, 0],
    ]);
    // The connection survived: nothing oversized reached the server, which would have closed it.
    expect(publisher.stats).toMatchObject({ framesPublished: 2, framesDropped: 1 });
    expect((await server.varz()).in_msgs).toBeGreaterThanOrEqual(2);
    await publisher.close();
    await subscriber.close();
  });

  it('carries raw 720p frames (2.76 MB) through a server started with the testkit default of 8 MiB', async () => {
    await using server = await startNatsServer();
    const publisherLink = await link(server.url);
    const publisher = await CameraPublisher.start(publisherLink, { camera: 'raw', stream: RAW_720P });
    const collector = new FrameCollector();
    const events: ((event: SubscriberEvent) => void)[] = [];
    const subscriber = await CameraSubscriber.start(await link(server.url), { cameras: ['raw'], onFrame: collector.onFrame, onEvent: (event) => [...events].forEach((l) => l(event)) });
    if (!subscriber.statsOf('raw')?.stream) await nextEvent(events, (event) => event.type === 'stream', 'the stream');
    // One at a time: a second 2.76 MB frame before the server confirmed the first would be over the
    // publisher's 2 MiB of unconfirmed bytes, and dropped.
    for (let seq = 0; seq < 3; seq++) {
      expect(publisher.publishFrame(fakeFrame(seq, RAW_720P))).toBe('published');
      await collector.until(() => collector.frames.length === seq + 1, `raw frame ${seq}`);
      // Server answers are in order: once this PING is answered, the frame's was too.
      await publisherLink.connection.flush();
      expect(publisher.stats.unconfirmedBytes).toBe(0);
    }
    for (const frame of collector.frames) {
      expect(frame.payload.length).toBe(1280 * 720 * 3);
      expect(pictureNumber(frame)).toBe(frame.header.seq);
    }
    expect(subscriber.statsOf('raw')).toMatchObject({ frames: 3, corrupt: 0, undeclaredGaps: 0 });
    await publisher.close();
    await subscriber.close();
  });
});
