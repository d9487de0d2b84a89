import { type NatsServer, startNatsServer } from '@camstream/testkit';
import { headers as natsHeaders, type Msg } from '@nats-io/transport-node';
import { CameraPublisher, CameraSubscriber, frameMessageBytes, HEADER_EPOCH, HEADER_RECONNECTS, HEADER_SIGNATURE, type NatsLink, signMessage, type SubscriberEvent } from '../src';
import { fakeFrame, FrameCollector, link, nextEvent, SMALL_STREAM } from './helpers';

let server: NatsServer;

beforeAll(async () => {
  server = await startNatsServer();
});

afterAll(async () => {
  await server.dispose();
});

interface Captured {
  subject: string;
  data: Uint8Array;
  headers: [string, string][];
}

/** Another client on the bus that records what it sees and publishes what it likes. */
async function eavesdropper(subject: string): Promise<{ captured: Captured[]; bus: NatsLink }> {
  const bus = await link(server.url, { name: 'eavesdropper' });
  const captured: Captured[] = [];
  bus.connection.subscribe(subject, {
    callback: (_error, msg: Msg) => {
      const headers: [string, string][] = [];
      for (const [key, values] of msg.headers ?? []) for (const value of values) headers.push([key, value]);
      captured.push({ subject: msg.subject, data: Uint8Array.from(msg.data), headers });
    },
  });
  await bus.connection.flush();
  return { captured, bus };
}

function republish(bus: NatsLink, message: Captured): void {
  const headers = natsHeaders();
  for (const [key, value] of message.headers) headers.append(key, value);
  bus.connection.publish(message.subject, message.data, { headers });
}

async function watcher(camera: string, secret: string) {
  const collector = new FrameCollector();
  const events: ((event: SubscriberEvent) => void)[] = [];
  const seen: SubscriberEvent[] = [];
  const subscriber = await CameraSubscriber.start(await link(server.url), {
    cameras: [camera],
    secret,
    onFrame: collector.onFrame,
    onEvent: (event) => {
      seen.push(event);
      [...events].forEach((listener) => listener(event));
    },
  });
  return { collector, events, seen, subscriber };
}

describe("a signed camera's subject, with another client on the bus", () => {
  it('refuses and counts forged, unsigned and replayed frames; the genuine stream goes on without gaps', async () => {
    const secret = 'correct horse battery staple';
    const { captured, bus } = await eavesdropper('camstream.gate.frames');
    const publisher = await CameraPublisher.start(await link(server.url), { camera: 'gate', stream: SMALL_STREAM, secret });
    const { collector, events, subscriber } = await watcher('gate', secret);
    if (!subscriber.statsOf('gate')?.stream) await nextEvent(events, (event) => event.type === 'stream', 'the stream');

    for (let seq = 0; seq < 10; seq++) publisher.publishFrame(fakeFrame(seq));
    await collector.until(() => collector.frames.at(-1)?.header.seq === 9, 'frame 9');
    await bus.connection.flush();
    expect(captured).toHaveLength(10);

    const refusal = (reason: string) => nextEvent(events, (event) => event.type === 'refused' && event.reason === reason, `a '${reason}' refusal`);
    const epochHeaders = (signature?: string) => {
      const headers = natsHeaders();
      headers.set(HEADER_EPOCH, publisher.epoch);
      headers.set(HEADER_RECONNECTS, '0');
      if (signature) headers.set(HEADER_SIGNATURE, signature);
      return headers;
    };
    // A frame from further ahead in the stream, signed with another key.
    const forged = frameMessageBytes(fakeFrame(100), 0);
    const wrongKey = signMessage('another key', { subject: 'camstream.gate.frames', epoch: publisher.epoch, reconnects: '0', nonce: '', message: forged });
    let refused = refusal('bad-signature');
    bus.connection.publish('camstream.gate.frames', forged, { headers: epochHeaders(wrongKey) });
    expect(await refused).toMatchObject({ detail: 'message on camstream.gate.frames with a wrong signature (another key, or altered)' });
    // The same bytes with no signature at all.
    refused = refusal('unsigned');
    bus.connection.publish('camstream.gate.frames', forged, { headers: epochHeaders() });
    expect(await refused).toMatchObject({ detail: 'unsigned message on camstream.gate.frames: this receiver requires signed messages' });
    // A genuine, correctly signed message published again.
    refused = refusal('replayed');
    republish(bus, captured[3]!);
    expect(await refused).toMatchObject({ detail: `frame 3 is not newer than frame 9 of sender run ${publisher.epoch}` });
    // A genuine frame altered in one payload byte, signature kept.
    const altered = { ...captured[9]!, data: Uint8Array.from(captured[9]!.data) };
    altered.data[altered.data.length - 1]! ^= 0xff;
    refused = refusal('bad-signature');
    republish(bus, altered);
    await refused;

    for (let seq = 10; seq < 20; seq++) publisher.publishFrame(fakeFrame(seq));
    await collector.until(() => collector.frames.at(-1)?.header.seq === 19, 'frame 19');
    expect(subscriber.statsOf('gate')).toMatchObject({
      frames: 20,
      refused: { unsigned: 1, badSignature: 2, replayed: 1, staleEpoch: 0 },
      undeclaredGaps: 0,
      lostInTransport: 0,
      corrupt: 0,
    });
    await publisher.close();
    await subscriber.close();
  });

  it("refuses a previous sender run's frames and announcement replayed after the sender restarted", async () => {
    const secret = 'k';
    const { captured, bus } = await eavesdropper('camstream.door.>');
    const first = await CameraPublisher.start(await link(server.url), { camera: 'door', stream: SMALL_STREAM, secret });
    const { collector, events, subscriber } = await watcher('door', secret);
    if (!subscriber.statsOf('door')?.stream) await nextEvent(events, (event) => event.type === 'stream', 'the first run');
    for (let seq = 0; seq < 5; seq++) first.publishFrame(fakeFrame(seq));
    await collector.until(() => collector.frames.at(-1)?.header.seq === 4, 'the first run');
    await first.close();

    // The sender restarts: a new run, numbered from 0 again, that receivers follow at once.
    const restarted = nextEvent(events, (event) => event.type === 'stream' && event.restarted, 'the second run');
    const second = await CameraPublisher.start(await link(server.url), { camera: 'door', stream: SMALL_STREAM, secret, epoch: `${Date.now() + 1000}-0123456789abcdef` });
    expect(await restarted).toMatchObject({ epoch: second.epoch });
    for (let seq = 0; seq < 5; seq++) second.publishFrame(fakeFrame(seq));
    await collector.until(() => collector.frames.at(-1)?.epoch === second.epoch && collector.frames.at(-1)?.header.seq === 4, 'the second run');
    await bus.connection.flush();

    const oldFrame = captured.find((message) => message.subject === 'camstream.door.frames' && message.headers.some(([key, value]) => key === HEADER_EPOCH && value === first.epoch))!;
    const oldHello = captured.find((message) => message.subject === 'camstream.door.hello' && message.headers.some(([key, value]) => key === HEADER_EPOCH && value === first.epoch))!;
    let refused = nextEvent(events, (event) => event.type === 'refused' && event.reason === 'stale-epoch', 'the old frame refused');
    republish(bus, oldFrame);
    expect(await refused).toMatchObject({ detail: `frame of sender run ${first.epoch}, older than the run followed (${second.epoch})` });
    refused = nextEvent(events, (event) => event.type === 'refused' && event.reason === 'stale-epoch', 'the old announcement refused');
    republish(bus, oldHello);
    await refused;

    second.publishFrame(fakeFrame(5));
    await collector.until(() => collector.frames.at(-1)?.header.seq === 5, 'the second run goes on');
    // Delivered in order: the first run, then the second; never a frame of the first run after the second began.
    const runs = collector.frames.map((frame) => (frame.epoch === first.epoch ? 'first' : 'second'));
    expect(runs.lastIndexOf('first')).toBeLessThan(runs.indexOf('second'));
    expect(subscriber.statsOf('door')).toMatchObject({ senderRuns: 2, epoch: second.epoch, frames: 11, lastSeq: 5, refused: { staleEpoch: 2 }, undeclaredGaps: 0 });
    await second.close();
    await subscriber.close();
  });

  it('follows a signed sender that starts after the receiver, from a describe prompted by its announcement', async () => {
    const secret = 'k';
    const { collector, events, seen, subscriber } = await watcher('attic', secret);
    const followed = nextEvent(events, (event) => event.type === 'stream', 'the stream');
    const publisher = await CameraPublisher.start(await link(server.url), { camera: 'attic', stream: SMALL_STREAM, secret });
    expect(await followed).toMatchObject({ epoch: publisher.epoch });
    publisher.publishFrame(fakeFrame(0));
    await collector.until(() => collector.frames.length === 1, 'the first frame');
    // The unsolicited announcement alone did not do it (it could be a replay); the describe reply did.
    expect(publisher.stats.describeReplies).toBeGreaterThanOrEqual(1);
    expect(seen.filter((event) => event.type === 'refused')).toEqual([]);
    expect(subscriber.statsOf('attic')).toMatchObject({ frames: 1, unannounced: 0 });
    await publisher.close();
    await subscriber.close();
  });

  it('refuses everything from a sender without the secret, so nothing is shown', async () => {
    const publisher = await CameraPublisher.start(await link(server.url), { camera: 'shed', stream: SMALL_STREAM });
    const { collector, events, subscriber } = await watcher('shed', 'the secret');
    // (Its describe reply is refused too, unsigned, whenever it comes.)
    const refused = nextEvent(events, (event) => event.type === 'refused' && event.reason === 'unsigned' && event.detail.includes('camstream.shed.frames'), 'the unsigned frame refused');
    publisher.publishFrame(fakeFrame(0));
    await refused;
    const stats = subscriber.statsOf('shed')!;
    expect(stats.stream).toBeUndefined();
    expect(stats.frames).toBe(0);
    expect(stats.refused.unsigned).toBeGreaterThanOrEqual(1);
    expect(collector.frames).toEqual([]);
    await publisher.close();
    await subscriber.close();
  });
});
