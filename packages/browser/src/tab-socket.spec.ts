import { rungLadder } from '@camstream/fanout';
import { OpenCVCodec } from '@camstream/opencv';
import { readFrameNumber } from '@camstream/testkit';
import { StreamFeed } from '../test/stream-feed';
import { BrowserServer, type BrowserServerOptions } from './browser-server';
import { FRAGMENT_BYTES, TAB_FRAME_HEADER_BYTES } from './tab-frames';
import { TestTab, waitFor, type TabFrame } from './testing/test-tab';

// The WebSocket at /ws over real loopback sockets, with a `ws` client acting as the page.

const WIDTH = 640;
const HEIGHT = 480;
const codec = new OpenCVCodec();
/** The "sender's" codec: its encodes are not the server's. */
const senderCodec = new OpenCVCodec();
const servers: BrowserServer[] = [];
const tabs: TestTab[] = [];
const spies: jest.SpyInstance[] = [];

afterEach(async () => {
  spies.splice(0).forEach((spy) => spy.mockRestore());
  for (const tab of tabs.splice(0)) tab.socket.terminate();
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function startServer(options: Partial<BrowserServerOptions> = {}): Promise<BrowserServer> {
  const server = await BrowserServer.listen({ host: '127.0.0.1', port: 0, title: 'test camera', codec, ...options });
  servers.push(server);
  return server;
}

let tabNumber = 0;

async function openTab(server: BrowserServer, options: ConstructorParameters<typeof TestTab>[1] = {}): Promise<TestTab> {
  const id = `tab${tabNumber++}`;
  const tab = new TestTab(`ws://127.0.0.1:${server.port}/ws?client=${id}`, options);
  tabs.push(tab);
  await tab.opened;
  await waitFor(() => server.clients.some((c) => c.id === id), 'the server to register the tab');
  return tab;
}

/** Frame bytes on the WebSocket, as the flow window counts them. */
const wireBytes = (payload: Buffer) => TAB_FRAME_HEADER_BYTES + payload.length;

/** A page behind a link of `bytesPerSecond`: each frame takes as long to arrive as that link needs. */
const linkOf = (bytesPerSecond: number) => (frame: TabFrame) => {
  const spanBytes = frame.messageBytes.slice(1).reduce((a, b) => a + b, 0);
  const spanMs = (1000 * spanBytes) / bytesPerSecond;
  return { spanBytes, spanMs, delayMs: (1000 * wireBytes(frame.payload)) / bytesPerSecond };
};

function tabInfo(server: BrowserServer, index = 0) {
  const tab = server.clients.filter((c) => c.kind === 'tab')[index];
  if (!tab?.tab) throw new Error(`no tab ${index}`);
  return { ...tab, ...tab.tab };
}

describe('the WebSocket at /ws', () => {
  test('a frame arrives as messages of at most 16 KiB that reassemble into the received JPEG, byte for byte', async () => {
    const server = await startServer();
    const tab = await openTab(server);
    const feed = new StreamFeed(server, senderCodec, { width: WIDTH, height: HEIGHT });
    const encodes = jest.spyOn(codec, 'encode');
    spies.push(encodes);
    const fed = [];
    for (let i = 0; i < 3; i++) {
      encodes.mockClear();
      fed.push(await feed.next());
      // The server encoded nothing itself: rung 0 of a JPEG stream is the stream's own payload.
      expect(encodes).not.toHaveBeenCalled();
      await tab.waitForFrames(i + 1);
    }
    fed.forEach((frame, i) => {
      const got = tab.frames[i]!;
      expect(got.header).toEqual({
        seq: frame.seq, captureTime: frame.captureTime, width: WIDTH, height: HEIGHT, rung: 0, dropped: 0, payloadBytes: frame.jpeg!.length, codec: 'jpeg', keyframe: false,
      });
      expect(got.payload.equals(frame.jpeg!)).toBe(true);
      // Several messages (so that the page can time the arrival), none larger than 16 KiB.
      expect(got.messageBytes.length).toBeGreaterThanOrEqual(4);
      expect(Math.max(...got.messageBytes)).toBeLessThanOrEqual(FRAGMENT_BYTES);
      expect(got.messageBytes.reduce((a, b) => a + b, 0)).toBe(wireBytes(frame.jpeg!));
    });
  });

  test('a tab that joins gets the newest received frame at once, then only newer ones, though older ones are still being decoded', async () => {
    const log: string[] = [];
    const server = await startServer({ log: (line) => log.push(line) });
    const feed = new StreamFeed(server, senderCodec, { width: 64, height: 48 });
    const frames = [];
    for (let i = 0; i < 4; i++) frames.push((await feed.prepare())!);
    // The receiver has three frames and has decoded none of them yet.
    for (const f of frames.slice(0, 3)) server.received({ seq: f.seq, captureTime: f.captureTime, width: 64, height: 48, encoding: 'jpeg' }, f.jpeg!);
    const tab = await openTab(server);
    await tab.waitForFrames(1);
    expect(tab.last!.header.seq).toBe(frames[2]!.seq);
    expect(tab.last!.payload.equals(frames[2]!.jpeg!)).toBe(true);
    // Their decoded images come, then a newer frame: only that one follows.
    for (const f of frames.slice(0, 3)) await server.write(f.image, { seq: f.seq, captureTime: f.captureTime });
    await feed.publish(frames[3]!);
    await tab.waitForFrames(2);
    await tab.settled();
    expect(tab.seqs).toEqual([frames[2]!.seq, frames[3]!.seq]);
    // Passed over, not skipped: the tab had a newer frame.
    expect(tab.last!.header.dropped).toBe(0);
    expect(log.filter((line) => /failed|error/i.test(line))).toEqual([]);
  });

  test('a raw stream: rung 0 is a JPEG encoded once per frame, only while someone watches', async () => {
    const server = await startServer();
    const feed = new StreamFeed(server, senderCodec, { width: WIDTH, height: HEIGHT, encoding: 'raw-bgr' });
    const encodes = jest.spyOn(codec, 'encode');
    spies.push(encodes);
    await feed.next();
    expect(encodes).not.toHaveBeenCalled();
    const tabA = await openTab(server);
    const tabB = await openTab(server);
    const frame = await feed.next();
    expect(encodes).toHaveBeenCalledTimes(1);
    await tabA.waitForFrames(1);
    await tabB.waitForFrames(1);
    expect(tabA.last!.payload.equals(tabB.last!.payload)).toBe(true);
    const decoded = await codec.decode(tabA.last!.payload, 'jpeg', { width: WIDTH, height: HEIGHT, channels: 3 });
    expect(readFrameNumber(decoded)).toBe(frame.seq);
    await tabA.close();
    await tabB.close();
    await waitFor(() => server.clientCount === 0, 'both tabs to leave');
    encodes.mockClear();
    await feed.next();
    expect(encodes).not.toHaveBeenCalled();
  });

  test('a tab that does not acknowledge gets the frames that fit in the window, then only the newest, with exact declared drops', async () => {
    const windowBytes = 100_000;
    // Rung 0 only: with adaptation, the drops would send the tab a smaller rung that still fits.
    const server = await startServer({ flow: { initialWindowBytes: windowBytes }, adapt: false });
    const tab = await openTab(server, { ack: 'none' });
    const feed = new StreamFeed(server, senderCodec, { width: WIDTH, height: HEIGHT });
    const fed = [];
    for (let i = 0; i < 20; i++) fed.push(await feed.next());
    await tab.settled();
    // What FlowWindow allows: the first frame always, then each while the bytes in flight fit.
    let fits = 1;
    let inFlight = wireBytes(fed[0]!.jpeg!);
    while (fits < fed.length && inFlight + wireBytes(fed[fits]!.jpeg!) <= windowBytes) inFlight += wireBytes(fed[fits++]!.jpeg!);
    expect(fits).toBeGreaterThan(1);
    expect(fits).toBeLessThan(fed.length - 1);
    expect(tab.seqs).toEqual(fed.slice(0, fits).map((f) => f.seq));
    expect(tab.frames.every((f) => f.header.dropped === 0)).toBe(true);
    // The newest frame waits; every one it replaced is counted.
    expect(tabInfo(server).dropped).toBe(fed.length - fits - 1);
    expect(tabInfo(server).inFlightBytes).toBe(inFlight);

    // One ack for the last frame it got settles them all: the newest frame comes, never a backlog.
    tab.ack(tab.last!.header.seq);
    await tab.waitForFrames(fits + 1);
    await tab.settled();
    expect(tab.frames).toHaveLength(fits + 1);
    const newest = tab.last!;
    expect(newest.header.seq).toBe(fed.at(-1)!.seq);
    expect(newest.payload.equals(fed.at(-1)!.jpeg!)).toBe(true);
    // Declared drops are exactly the frames missing in between.
    const missing = newest.header.seq - tab.frames[fits - 1]!.header.seq - 1;
    expect(newest.header.dropped).toBe(missing);
    expect(newest.header.dropped).toBe(fed.length - fits - 1);
  });

  test('acknowledgements keep the window open: a tab that acks gets every frame', async () => {
    const server = await startServer({ flow: { initialWindowBytes: 60_000 } });
    const tab = await openTab(server, { ack: 'fast' });
    const feed = new StreamFeed(server, senderCodec, { width: WIDTH, height: HEIGHT });
    const fed = [];
    for (let i = 0; i < 30; i++) {
      fed.push(await feed.next());
      // The next frame is published once the server has this one's ack.
      await waitFor(() => tabInfo(server).acks === i + 1, `the ack of frame ${i}`);
    }
    expect(tab.seqs).toEqual(fed.map((f) => f.seq));
    expect(tabInfo(server).dropped).toBe(0);
    expect(tabInfo(server).inFlightBytes).toBe(0);
    expect(tabInfo(server).capacityBytesPerSecond).toBeGreaterThan(0);
  });

  test('a slow link moves the tab to a lower rung of the right size, and a fast one back to rung 0', async () => {
    const server = await startServer();
    const ladder = rungLadder('jpeg', WIDTH, HEIGHT, 80);
    // 30 fps paced, so that the server measures the stream's bitrate as it would live.
    const feed = new StreamFeed(server, senderCodec, { width: WIDTH, height: HEIGHT, fps: 30 });
    const first = await feed.prepare();
    const streamBytesPerSecond = first!.jpeg!.length * 30;
    const tab = await openTab(server, { ack: linkOf(0.3 * streamBytesPerSecond) });
    await feed.publish(first!);
    const running = feed.run();
    try {
      await waitFor(() => (tab.last?.header.rung ?? 0) > 0, 'a frame on a lower rung');
      const low = tab.last!;
      const spec = ladder[low.header.rung]!;
      expect([low.header.width, low.header.height]).toEqual([spec.width, spec.height]);
      const decoded = await codec.decode(low.payload, 'jpeg', { width: spec.width, height: spec.height, channels: 3 });
      expect([decoded.width, decoded.height]).toEqual([spec.width, spec.height]);
      // Cheaper than the stream itself (how much depends on the frame rate the server measures).
      expect(low.payload.length).toBeLessThan(first!.jpeg!.length);

      tab.ackPolicy = 'fast';
      const countBefore = tab.frames.length;
      await waitFor(() => tab.frames.length > countBefore && tab.last!.header.rung === 0, 'rung 0 again once the link is fast', 5000);
      expect([tab.last!.header.width, tab.last!.header.height]).toEqual([WIDTH, HEIGHT]);
    } finally {
      await running.stop();
    }
    expect(tab.errors).toEqual([]);
  });

  test('each lower rung is encoded once per frame, whatever the number of tabs on it', async () => {
    const server = await startServer();
    const feed = new StreamFeed(server, senderCodec, { width: WIDTH, height: HEIGHT, fps: 30 });
    const first = await feed.prepare();
    const slowLink = linkOf(0.3 * first!.jpeg!.length * 30);
    const slowTabs = [await openTab(server, { ack: slowLink }), await openTab(server, { ack: slowLink }), await openTab(server, { ack: slowLink })];
    const fastTab = await openTab(server, { ack: 'fast' });
    await feed.publish(first!);
    const running = feed.run();
    try {
      await waitFor(() => slowTabs.every((tab) => (tab.last?.header.rung ?? 0) > 0), 'all slow tabs on a lower rung');
    } finally {
      await running.stop();
    }
    // All three measured the same link, so they are on the same rung.
    const rungs = new Set(slowTabs.map((_tab, i) => tabInfo(server, i).rung));
    expect(rungs.size).toBe(1);
    await Promise.all(tabs.map((tab) => tab.settled()));
    const counts = tabs.map((tab) => tab.frames.length);

    const encodes = jest.spyOn(codec, 'encode');
    spies.push(encodes);
    const resizes = jest.spyOn(codec, 'resize');
    spies.push(resizes);
    const frame = await feed.next();
    // One encode (the lower rung); rung 0 is the stream's payload. At most one scaling.
    expect(encodes).toHaveBeenCalledTimes(1);
    expect(resizes.mock.calls.length).toBeLessThanOrEqual(1);
    await waitFor(() => tabs.every((tab, i) => tab.frames.length > counts[i]!), 'the frame at every tab');
    const payloads = slowTabs.map((tab) => tab.last!);
    expect(payloads.every((p) => p.header.seq === frame.seq && p.header.rung === payloads[0]!.header.rung)).toBe(true);
    expect(payloads.every((p) => p.payload.equals(payloads[0]!.payload))).toBe(true);
    expect(fastTab.last!.header.rung).toBe(0);
    expect(fastTab.last!.payload.equals(frame.jpeg!)).toBe(true);
  });

  test('with adaptation off a slow tab stays on rung 0 and only drops frames', async () => {
    const server = await startServer({ adapt: false });
    const feed = new StreamFeed(server, senderCodec, { width: WIDTH, height: HEIGHT, fps: 30 });
    const first = await feed.prepare();
    const tab = await openTab(server, { ack: linkOf(0.3 * first!.jpeg!.length * 30) });
    await feed.publish(first!);
    const running = feed.run();
    try {
      await waitFor(() => tabInfo(server).dropped > 5, 'frames skipped for the slow tab');
    } finally {
      await running.stop();
    }
    expect(tab.frames.every((f) => f.header.rung === 0)).toBe(true);
  });

  test('a bad message from the page closes its connection with a reason; others are not disturbed', async () => {
    const server = await startServer();
    const feed = new StreamFeed(server, senderCodec, { width: WIDTH, height: HEIGHT });
    const good = await openTab(server);
    const cases: Array<[string | Buffer, number, RegExp]> = [
      ['not json', 1008, /not JSON/],
      [JSON.stringify({ type: 'hello' }), 1008, /expected \{"type":"ack"/],
      [JSON.stringify({ type: 'ack', seq: -1, spanMs: 0, spanBytes: 0 }), 1008, /seq must be a non-negative integer/],
      [JSON.stringify({ type: 'ack', seq: 12345, spanMs: 0, spanBytes: 0 }), 1008, /ack for frame 12345, which was never sent/],
      [Buffer.from([1, 2, 3]), 1003, /only text acks/],
      ['x'.repeat(2000), 1009, /^$/],
    ];
    for (const [message, code, reason] of cases) {
      const bad = await openTab(server, { ack: 'none' });
      bad.socket.send(message);
      await expect(bad.closed).resolves.toEqual({ code, reason: expect.stringMatching(reason) });
    }
    const frame = await feed.next();
    await waitFor(() => good.last?.header.seq === frame.seq, 'the good tab to get the next frame');
  });

  test('a tab that never acknowledges is cut after stalledClientTimeoutMs', async () => {
    const server = await startServer({ stalledClientTimeoutMs: 200 });
    const tab = await openTab(server, { ack: 'none' });
    await new StreamFeed(server, senderCodec, { width: 64, height: 48 }).next();
    await tab.waitForFrames(1);
    await tab.closed;
    await waitFor(() => server.clientCount === 0, 'the server to drop the tab', 3000);
  });

  test('a restarted stream (frame numbers begin again) closes tabs with 1012, and they may reconnect', async () => {
    const server = await startServer();
    const feed = new StreamFeed(server, senderCodec, { width: 64, height: 48 });
    const tab = await openTab(server);
    for (let i = 0; i < 3; i++) await feed.next();
    await tab.waitForFrames(3);
    const restarted = new StreamFeed(server, senderCodec, { width: 64, height: 48 });
    await restarted.next();
    await expect(tab.closed).resolves.toEqual({ code: 1012, reason: 'the stream restarted' });
    const again = await openTab(server);
    const frame = await restarted.next();
    await waitFor(() => again.last?.header.seq === frame.seq, 'the new stream at the new tab');
  });

  test('only pages of this server may open the WebSocket; other paths have none', async () => {
    const server = await startServer();
    const foreign = new TestTab(`ws://127.0.0.1:${server.port}/ws`, { headers: { Origin: 'http://evil.example' } });
    await expect(foreign.opened).rejects.toThrow('HTTP 403');
    const own = new TestTab(`ws://127.0.0.1:${server.port}/ws`, { headers: { Origin: `http://127.0.0.1:${server.port}` } });
    tabs.push(own);
    await own.opened;
    const elsewhere = new TestTab(`ws://127.0.0.1:${server.port}/video`);
    await expect(elsewhere.opened).rejects.toThrow('HTTP 404');
  });

  test('beyond maxClients a WebSocket is refused with 503, also when the handshakes come at once', async () => {
    const server = await startServer({ maxClients: 2 });
    const together = [0, 1, 2, 3].map(() => new TestTab(`ws://127.0.0.1:${server.port}/ws`));
    tabs.push(...together);
    const outcomes = await Promise.allSettled(together.map((tab) => tab.opened));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(2);
    for (const refused of outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected')) {
      expect(refused.reason.message).toBe('WebSocket refused: HTTP 503');
    }
    await waitFor(() => server.clientCount === 2, 'two tabs');
  });

  test('close() closes every tab with 1001 and the server', async () => {
    const server = await startServer();
    const tab = await openTab(server);
    await server.close();
    await expect(tab.closed).resolves.toEqual({ code: 1001, reason: 'the server is shutting down' });
    expect(server.clientCount).toBe(0);
  });
});
