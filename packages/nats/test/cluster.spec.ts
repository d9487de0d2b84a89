import { type NatsCluster, startNatsCluster } from '@camstream/testkit';
import { CameraPublisher, CameraSubscriber, type NatsLink, type Outage, type SubscriberEvent } from '../src';
import { fakeFrame, FrameCollector, link, nextEvent, pictureNumber, SMALL_STREAM } from './helpers';

/*
 * One camera, published through node A of a 2-node cluster, watched by two receivers on node B.
 * A node restarts: the clients on it reconnect (to the other node, which the cluster told them
 * of, or to the node once it is back), frames resume, and the receivers report the interruption:
 * no undeclared gap, the lost and dropped frames counted against the outage.
 */

/** The requirement: frames resume within 5 s of a node restart. */
const RESUME_REQUIREMENT_MS = 5000;

let cluster: NatsCluster;
let publisherLink: NatsLink;
let publisher: CameraPublisher;
let pacer: NodeJS.Timeout;
const receivers: { name: string; collector: FrameCollector; events: ((event: SubscriberEvent) => void)[]; seen: SubscriberEvent[]; subscriber: CameraSubscriber }[] = [];

beforeAll(async () => {
  cluster = await startNatsCluster(2);
  const [a, b] = cluster.servers;
  publisherLink = await link(a!.url, { name: 'cluster publisher' });
  publisher = await CameraPublisher.start(publisherLink, { camera: 'lobby', stream: SMALL_STREAM });
  for (const name of ['receiver 1', 'receiver 2']) {
    const collector = new FrameCollector();
    const events: ((event: SubscriberEvent) => void)[] = [];
    const seen: SubscriberEvent[] = [];
    const subscriber = await CameraSubscriber.start(await link(b!.url, { name }), {
      cameras: ['lobby'],
      onFrame: collector.onFrame,
      onEvent: (event) => {
        seen.push(event);
        [...events].forEach((listener) => listener(event));
      },
    });
    receivers.push({ name, collector, events, seen, subscriber });
  }
  // 30 fps, numbered by the publisher's own clock of frames, skipped or not.
  let seq = 0;
  pacer = setInterval(() => {
    try {
      publisher.publishFrame(fakeFrame(seq++));
    } catch (error) {
      console.error(error);
    }
  }, 1000 / 30);
  for (const { collector } of receivers) await collector.until(() => collector.frames.length >= 30, 'a second of frames');
}, 60_000);

afterAll(async () => {
  clearInterval(pacer);
  await Promise.all(receivers.map(({ subscriber }) => subscriber.close()));
  await publisher.close();
  await cluster.dispose();
});

/** Restarts `node` and waits until every receiver reported the interruption and got 30 more frames. */
async function restartAndResume(node: number): Promise<{ outages: Outage[]; restartMs: number }> {
  const outagesReported = receivers.map(({ events }) => nextEvent(events, (event) => event.type === 'outage-end', 'the outage to end', 30_000));
  const before = receivers.map(({ collector }) => collector.frames.length);
  const started = performance.now();
  await cluster.node(node).restart();
  const restartMs = performance.now() - started;
  const outages = (await Promise.all(outagesReported)).map((event) => (event as Extract<SubscriberEvent, { type: 'outage-end' }>).outage);
  await Promise.all(receivers.map(({ collector }, i) => collector.until(() => collector.frames.length >= before[i]! + 30, '30 frames after the restart', 30_000)));
  return { outages, restartMs };
}

/** Which node a host:port is. */
function nodeName(hostPort: string): string {
  const index = cluster.servers.findIndex((server) => server.hostPort === hostPort);
  return index === -1 ? hostPort : `node ${'AB'[index]}`;
}

function describeOutage(outage: Outage): string {
  return `${outage.cause}, ${outage.lengthMs.toFixed(0)} ms without frames, ${outage.lostFrames} lost in transport, ${outage.declaredDrops} dropped by the sender`;
}

describe('a 2-node cluster: publisher on node A, receivers on node B', () => {
  it('restarting node A: the sender reconnects, frames resume, the outage is reported and nothing else is missing', async () => {
    const { outages, restartMs } = await restartAndResume(0);
    console.log(`node A (the sender's) restarted in ${restartMs.toFixed(0)} ms; the sender is now on ${nodeName(publisherLink.server)} after ${publisher.stats.reconnects} reconnect(s); receivers saw: ${outages.map(describeOutage).join('; ')}`);
    expect(publisher.stats.reconnects).toBe(1);
    for (const [i, { subscriber, collector, seen }] of receivers.entries()) {
      // The receivers' own connections (to node B) never broke.
      expect(seen.filter((event) => event.type === 'link')).toEqual([]);
      const outage = outages[i]!;
      expect(outage.cause).toBe('sender-reconnected');
      expect(outage.lengthMs).toBeLessThan(RESUME_REQUIREMENT_MS);
      const stats = subscriber.statsOf('lobby')!;
      // Every frame missing is accounted for by the outage: lost in transport or declared by the sender.
      expect(stats).toMatchObject({ undeclaredGaps: 0, corrupt: 0, senderRuns: 1 });
      expect(stats.lostInTransport).toBe(stats.outages.recent.reduce((sum, each) => sum + each.lostFrames, 0));
      for (const frame of collector.frames.slice(-30)) expect(pictureNumber(frame)).toBe(frame.header.seq);
    }
  });

  it("restarting node B: the receivers reconnect (and the sender, if it failed over there), frames resume, the outage is reported and nothing else is missing", async () => {
    const { outages, restartMs } = await restartAndResume(1);
    // The sender may be on node B too by now (it fails over to the node the cluster told it of): then both reconnect.
    console.log(`node B (the receivers') restarted in ${restartMs.toFixed(0)} ms; the sender is on ${nodeName(publisherLink.server)} after ${publisher.stats.reconnects} reconnect(s); receivers saw: ${outages.map(describeOutage).join('; ')}`);
    for (const [i, { subscriber, seen }] of receivers.entries()) {
      expect(seen.filter((event) => event.type === 'link').map((event) => (event as { state: string }).state)).toEqual(['disconnected', 'reconnected']);
      const outage = outages[i]!;
      expect(outage.cause).toBe('receiver-reconnected');
      expect(outage.lengthMs).toBeLessThan(RESUME_REQUIREMENT_MS);
      expect(subscriber.statsOf('lobby')).toMatchObject({ undeclaredGaps: 0, corrupt: 0, senderRuns: 1 });
    }
  });
});
