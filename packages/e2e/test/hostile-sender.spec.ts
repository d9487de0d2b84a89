import net from 'node:net';
import type { ErrorHeader, Header } from '@camstream/protocol';
import type { StreamServer } from '@camstream/sender';
import { FakeCamera, stallingClient } from '@camstream/testkit';
import {
  frameMessage,
  garbage,
  lengthPrefix,
  pump,
  rawExchange,
  receiverHello,
  rssMb,
  startReceiver,
  startServerWith,
  until,
  type TestReceiver,
} from './harness';

// Hostile clients against a real StreamServer fed by the real pump, in one process. A well-behaved
// receiver watches throughout: whatever the hostile clients do, its frames keep coming, in order.

const WIDTH = 320;
const HEIGHT = 240;
const FRAME_BYTES = WIDTH * HEIGHT * 3;
const HANDSHAKE_TIMEOUT_MS = 500;
const STALLED_VIEWER_TIMEOUT_MS = 3000;
/** Loose on purpose: a leak of what the hostile clients announce (1 GB, 2^64) would blow far past it. */
const RSS_GROWTH_LIMIT_MB = 200;

let camera: FakeCamera;
let server: StreamServer;
let stopPump: AbortController;
let pumping: Promise<unknown>;
let healthy: TestReceiver;
let healthyEnded = false;
const serverLog: string[] = [];
let rssAtStart: number;

beforeAll(async () => {
  camera = new FakeCamera({ width: WIDTH, height: HEIGHT, fps: 30 });
  server = await startServerWith(camera, 'raw-bgr', {
    maxViewers: 64,
    handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
    stalledViewerTimeoutMs: STALLED_VIEWER_TIMEOUT_MS,
    log: (line) => serverLog.push(line),
  });
  stopPump = new AbortController();
  pumping = pump(server, camera, stopPump.signal);
  healthy = startReceiver(server.port, { name: 'healthy' });
  void healthy.result.then(() => (healthyEnded = true));
  await until(() => healthy.stats.summary().frames >= 10, 'the healthy receiver to get its first frames');
  rssAtStart = rssMb();
});

afterAll(async () => {
  healthy?.stop();
  await healthy?.result;
  stopPump?.abort();
  await pumping;
  await server?.close('test over');
  await camera?.close();
});

/** After each hostile client: the healthy receiver still gets frames, nothing is left over. */
async function expectSenderUnharmed(): Promise<void> {
  const before = healthy.stats.summary().frames;
  await until(() => healthy.stats.summary().frames >= before + 10, 'the healthy receiver to get 10 more frames');
  await until(() => server.connectionCount === 1 && server.viewerList.length === 1, 'only the healthy receiver to be connected');
  expect(healthyEnded).toBe(false);
  expect(server.viewerList[0]!.name).toBe('healthy');
  expect(healthy.stats.summary()).toMatchObject({ gaps: 0, corrupt: 0 });
  expect(rssMb() - rssAtStart).toBeLessThan(RSS_GROWTH_LIMIT_MB);
}

function errorsIn(messages: Header[]): ErrorHeader[] {
  return messages.filter((m): m is ErrorHeader => m.type === 'error');
}

const validFrame = () =>
  frameMessage(Buffer.alloc(6), { seq: 0, captureTime: 1, width: 2, height: 1, channels: 3, encoding: 'raw-bgr' });

describe.each<{ name: string; bytes: () => Buffer[]; code: string | RegExp; reason: RegExp }>([
  {
    name: 'random garbage',
    bytes: () => [garbage(4096), garbage(4096)],
    // 8 random bytes as a length are all but certainly over the 64 KiB a receiver may send.
    code: /^ERR_(TOO_LARGE|LENGTH_MISMATCH|BAD_HEADER|SCHEMA|VERSION|HANDSHAKE_TIMEOUT)$/,
    reason: /./,
  },
  {
    name: 'a length prefix of 2^64 - 1',
    bytes: () => [Buffer.alloc(8, 0xff)],
    code: 'ERR_TOO_LARGE',
    reason: /message length 18446744073709551615 exceeds the limit of 65536 bytes/,
  },
  {
    name: 'a 1 GB header announced (N = 1 GB + 4, H = 1 GB), then a few KB',
    bytes: () => [lengthPrefix(2 ** 30 + 4, 2 ** 30), Buffer.alloc(4096, 0x7b)],
    code: 'ERR_TOO_LARGE',
    reason: /message length 1073741828 exceeds the limit of 65536 bytes/,
  },
  {
    name: 'a 1 GB header length inside a small message',
    bytes: () => [lengthPrefix(1000, 2 ** 30), Buffer.alloc(988, 0x7b)],
    code: 'ERR_TOO_LARGE',
    reason: /header length 1073741824 exceeds the limit of 65536 bytes/,
  },
  {
    name: 'half a hello, then silence',
    bytes: () => [receiverHello('half').subarray(0, 20)],
    code: 'ERR_HANDSHAKE_TIMEOUT',
    reason: /no hello received in time/,
  },
  {
    name: 'a hello of protocol version 3',
    bytes: () => [Buffer.from(receiverHello('future').toString('latin1').replace('"version":2', '"version":3'), 'latin1')],
    code: 'ERR_VERSION',
    reason: /^peer speaks protocol "camstream" version 3, this side speaks "camstream" version 2$/,
  },
  {
    name: 'a frame instead of a hello',
    bytes: () => [validFrame()],
    code: 'ERR_HANDSHAKE',
    reason: /expected a hello from a receiver, got 'frame' message/,
  },
  {
    name: 'a frame after its hello',
    bytes: () => [receiverHello('frame-sending receiver'), validFrame()],
    code: 'ERR_UNEXPECTED',
    reason: /unexpected 'frame' message after the handshake/,
  },
])('a client sending $name', ({ bytes, code, reason }) => {
  it('gets an error with a code and is disconnected; the sender and its healthy receiver carry on', async () => {
    const exchange = await rawExchange(server.port, bytes(), { timeoutMs: 10_000 });
    expect(exchange.closedByPeer).toBe(true);
    const errors = errorsIn(exchange.messages);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.code).toMatch(code);
    expect(errors[0]!.reason).toMatch(reason);
    // Nothing after the error: the sender decodes nothing more and closes.
    expect(exchange.messages.at(-1)).toBe(errors[0]);
    await expectSenderUnharmed();
  });
});

it('half a hello is dropped after the handshake deadline, not before', async () => {
  const exchange = await rawExchange(server.port, [receiverHello('slow').subarray(0, 20)], { timeoutMs: 10_000 });
  expect(errorsIn(exchange.messages)[0]?.code).toBe('ERR_HANDSHAKE_TIMEOUT');
  expect(exchange.elapsedMs).toBeGreaterThanOrEqual(HANDSHAKE_TIMEOUT_MS - 50);
  await expectSenderUnharmed();
});

it('a refused client that keeps sending is neither decoded nor logged again', async () => {
  const logged = serverLog.length;
  // Refused on its first 8 bytes, it goes on sending 1 MB in 16 writes.
  const chunks = [Buffer.alloc(8, 0xff), ...Array.from({ length: 16 }, () => garbage(64 * 1024))];
  const exchange = await rawExchange(server.port, chunks, { timeoutMs: 10_000, gapMs: 5 });
  expect(errorsIn(exchange.messages).map((e) => e.code)).toEqual(['ERR_TOO_LARGE']);
  const newLines = serverLog.slice(logged).filter((l) => /dropped|refused/.test(l));
  expect(newLines).toHaveLength(1);
  await expectSenderUnharmed();
});

it('survives 500 connections opened and dropped in bursts', async () => {
  const total = 500;
  const concurrency = 50;
  const outcomes = { errors: 0, hellos: 0, closed: 0 };
  /** One short-lived client; which kind depends on its number. Resolves once its socket is closed. */
  const churn = (i: number) =>
    new Promise<void>((resolve) => {
      const socket = net.connect({ port: server.port, host: '127.0.0.1' });
      const guard = setTimeout(() => socket.destroy(), 10_000);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearTimeout(guard);
        outcomes.closed++;
        resolve();
      });
      let received = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        received = received.length < 4096 ? Buffer.concat([received, chunk]) : received;
        const text = received.toString('latin1');
        if (i % 5 === 2 && text.includes('"role":"sender"')) {
          outcomes.hellos++;
          socket.resetAndDestroy(); // gone in the middle of the frames
        }
        if (i % 5 === 3 && text.includes('"type":"error"')) outcomes.errors++;
      });
      socket.on('connect', () => {
        switch (i % 5) {
          case 0: // connect and vanish
            socket.resetAndDestroy();
            break;
          case 1: // half a hello, then vanish
            socket.write(receiverHello(`churn ${i}`).subarray(0, 15), () => socket.destroy());
            break;
          case 2: // a whole hello: joins, then drops mid-stream (above)
            socket.write(receiverHello(`churn ${i}`));
            break;
          case 3: // garbage, then wait for the verdict
            socket.write(Buffer.alloc(8, 0xff));
            break;
          case 4: // connect and close politely without a word
            socket.end();
            break;
        }
      });
    });
  for (let start = 0; start < total; start += concurrency) {
    await Promise.all(Array.from({ length: Math.min(concurrency, total - start) }, (_, k) => churn(start + k)));
  }
  expect(outcomes.closed).toBe(total);
  expect(outcomes.hellos).toBe(total / 5);
  expect(outcomes.errors).toBe(total / 5);
  await expectSenderUnharmed();
});

it('a client that says hello and never reads costs the sender at most a frame, then is disconnected', async () => {
  await using stalled = await stallingClient(server.port, '127.0.0.1', receiverHello('stalled'));
  await until(() => server.viewerList.some((v) => v.name === 'stalled'), 'the stalled viewer to join');
  const viewer = server.viewerList.find((v) => v.name === 'stalled')!;
  // No ack comes from it, so its window stays where it starts (PROTOCOL.md 4.3).
  const window = viewer.windowBytes;
  await until(
    () => !server.viewerList.includes(viewer),
    'the stalled viewer to be disconnected',
    STALLED_VIEWER_TIMEOUT_MS + 15_000,
  );
  // It acknowledged nothing, so every byte written to it stayed in flight: the window let one
  // frame through (more only if they fit under it); every later frame was dropped for it instead.
  expect(viewer.sent).toBeGreaterThan(0);
  expect(viewer.bytesSent).toBeLessThanOrEqual(Math.max(window, FRAME_BYTES + 1024));
  expect(viewer.dropped).toBeGreaterThan(0);
  expect(serverLog.join('\n')).toMatch(/viewer #\d+ \(stalled\) took no data for 3(\.0)? s: disconnected/);
  await stalled.close();
  await expectSenderUnharmed();
});

it('the healthy receiver saw every frame in order through all of it', async () => {
  // Its own burst of hostile clients, so that run alone (jest -t) it still watches through some.
  const burst = await Promise.all(
    Array.from({ length: 5 }, (_, i) => [
      rawExchange(server.port, [garbage(4096)]),
      rawExchange(server.port, [Buffer.alloc(8, 0xff)]),
      rawExchange(server.port, [receiverHello(`burst ${i}`).subarray(0, 20)]),
      rawExchange(server.port, [validFrame()]),
    ]).flat(),
  );
  expect(burst.map((exchange) => exchange.closedByPeer && errorsIn(exchange.messages).length)).toEqual(burst.map(() => 1));
  await until(() => healthy.stats.summary().frames > 100, 'the healthy receiver to get more than 100 frames');
  await expectSenderUnharmed();
  const s = healthy.stats.summary();
  expect(s).toMatchObject({ gaps: 0, corrupt: 0 });
  expect(s.frames).toBeGreaterThan(100);
  expect(healthy.sink.numbers).toEqual([...healthy.sink.numbers].sort((a, b) => a - b));
  expect(healthy.log.join('\n')).not.toMatch(/reconnecting|closed|reset/);
});
