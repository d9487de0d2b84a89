import * as path from 'node:path';
import { type AppProcess, type NatsServer, startNatsServer, startProcess } from '@camstream/testkit';
import { CameraSubscriber, type NatsFrame, type SubscriberEvent } from '../src';
import { link, nextEvent, pictureNumber } from './helpers';

const WIDTH = 320;
const HEIGHT = 240;
const FRAME_BYTES = WIDTH * HEIGHT * 3;

let server: NatsServer;
let publisher: AppProcess;

beforeAll(async () => {
  server = await startNatsServer();
  // 30 fps in a process of its own: the consumer below may block this one's event loop.
  publisher = startProcess(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(__dirname, 'fixtures', 'publisher-process.ts'), server.url, 'busy', String(WIDTH), String(HEIGHT), '30'], {
    env: { TS_NODE_PROJECT: path.join(__dirname, '..', 'tsconfig.json') },
    name: 'publisher-process',
  });
  await publisher.waitForLine(/^ready /, { timeoutMs: 30_000 });
}, 60_000);

afterAll(async () => {
  await publisher.kill();
  await server.dispose();
});

function blockFor(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // a consumer that decodes on the main thread
  }
}

const consumers: [string, (frame: NatsFrame) => void | Promise<void>][] = [
  ['waits 200 ms per frame', () => new Promise<void>((resolve) => setTimeout(resolve, 200))],
  ['blocks its event loop for 200 ms per frame', () => blockFor(200)],
];

describe('latest-wins under a slow consumer (30 fps to a consumer that manages 5)', () => {
  it.each(consumers)('a consumer that %s gets only the newest frame each time; nothing queues', async (_what, consume) => {
    const name = `latest-wins subscriber ${consumers.findIndex(([what]) => what === _what)}`;
    const deliveries: { seq: number; newest: number | undefined; held: number; picture: number | null }[] = [];
    // Set once start() returns; a frame before that (there is none: the stream is described first) finds no stats.
    let subscriber: CameraSubscriber | undefined = undefined;
    const events: ((event: SubscriberEvent) => void)[] = [];
    let enough: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (enough = resolve));
    const started = await CameraSubscriber.start(await link(server.url, { name }), {
      cameras: ['busy'],
      onEvent: (event) => [...events].forEach((listener) => listener(event)),
      onFrame: (frame) => {
        const stats = subscriber?.statsOf('busy') ?? { lastSeq: undefined, held: -1 };
        deliveries.push({ seq: frame.header.seq, newest: stats.lastSeq, held: stats.held, picture: pictureNumber(frame) });
        if (deliveries.length === 12) enough();
        return consume(frame);
      },
    });
    subscriber = started;
    if (!started.statsOf('busy')?.stream) await nextEvent(events, (event) => event.type === 'stream', 'the stream');

    // The server's view of this subscriber while it runs: bytes it holds for it, waiting to be written.
    let maxPendingBytes = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const connection = (await server.connz()).connections.find((c) => c.name === name);
        maxPendingBytes = Math.max(maxPendingBytes, connection?.pending_bytes ?? 0);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    await done;
    sampling = false;
    await sampler;
    await started.close();

    const stats = started.statsOf('busy')!;
    console.log(`latest-wins, consumer that ${_what}: ${stats.frames} frames checked, ${stats.delivered} delivered, ${stats.skipped} replaced by newer ones; server pending for this subscriber at most ${maxPendingBytes} bytes`);
    // Each frame handed over was the newest one checked at that moment: fresh, never from a queue.
    for (const delivery of deliveries) {
      expect(delivery.seq).toBe(delivery.newest);
      expect(delivery.picture).toBe(delivery.seq);
      expect(delivery.held).toBe(0);
    }
    // The consumer could not take every frame, and the ones it missed were dropped, not kept.
    expect(stats.skipped).toBeGreaterThan(0);
    expect(stats.frames).toBe(stats.delivered + stats.skipped + stats.held);
    expect(stats.undeclaredGaps).toBe(0);
    // The server never had to hold much for this subscriber (it cuts one off at 64 MB), and cut nobody off.
    expect(maxPendingBytes).toBeLessThan(30 * FRAME_BYTES);
    expect((await server.varz()).slow_consumers).toBe(0);
  });
});
