import { request } from 'node:http';
import { OpenCVCodec } from '@camstream/opencv';
import { readFrameNumber, renderFakeFrame } from '@camstream/testkit';
import { BrowserServer } from './browser-server';
import { TestTab, waitFor, type TabFrame } from './testing/test-tab';

// An H.264 stream through the browser server, over real loopback sockets with `ws` clients as
// pages. The access units here are stand-ins (the server forwards them untouched, and reads only
// the header's keyframe flag): what matters is which ones each tab gets. Decoding them for real is
// the Chromium test's job (packages/e2e). The decoded pictures are the fake camera's, so the JPEG
// a page without WebCodecs gets can be checked by its frame number.

const WIDTH = 320;
const HEIGHT = 240;
/** A keyframe every this many frames. */
const GOP = 10;
const codec = new OpenCVCodec();
const servers: BrowserServer[] = [];
const tabs: TestTab[] = [];

afterEach(async () => {
  for (const tab of tabs.splice(0)) tab.socket.terminate();
  await Promise.all(servers.splice(0).map((server) => server.close()));
  jest.restoreAllMocks();
});

async function startServer(): Promise<BrowserServer> {
  const server = await BrowserServer.listen({ host: '127.0.0.1', port: 0, title: 'h264 camera', codec });
  servers.push(server);
  return server;
}

let tabNumber = 0;
async function openTab(server: BrowserServer, codecs: string | undefined, options: ConstructorParameters<typeof TestTab>[1] = {}): Promise<TestTab> {
  const id = `h264tab${tabNumber++}`;
  const tab = new TestTab(`ws://127.0.0.1:${server.port}/ws?client=${id}${codecs ? `&codecs=${codecs}` : ''}`, options);
  tabs.push(tab);
  await tab.opened;
  await waitFor(() => server.clients.some((c) => c.id === id), 'the server to register the tab');
  return tab;
}

/** Frame `seq` as the receiver hands it over: the access unit as received, then its decoded picture. */
async function feed(server: BrowserServer, seq: number): Promise<void> {
  const keyframe = seq % GOP === 0;
  const captureTime = Date.now();
  server.received({ seq, captureTime, width: WIDTH, height: HEIGHT, encoding: 'h264', ...(keyframe ? { keyframe } : {}) }, standInAccessUnit(seq, keyframe));
  await server.write(renderFakeFrame(seq, WIDTH, HEIGHT), { seq, captureTime });
}

function standInAccessUnit(seq: number, keyframe: boolean): Buffer {
  return Buffer.from(`${keyframe ? 'IDR' : 'P'} access unit of frame ${seq}`);
}

/** The H.264 frames a tab got decode: the first is a keyframe, and each one after a gap too. */
function expectDecodableH264(frames: readonly TabFrame[]): void {
  const h264 = frames.filter((f) => f.header.codec === 'h264');
  for (let i = 0; i < h264.length; i++) {
    const gap = i === 0 || h264[i]!.header.seq !== h264[i - 1]!.header.seq + 1;
    if (gap) expect({ seq: h264[i]!.header.seq, keyframe: h264[i]!.header.keyframe }).toEqual({ seq: h264[i]!.header.seq, keyframe: true });
    expect(h264[i]!.payload.toString()).toBe(standInAccessUnit(h264[i]!.header.seq, h264[i]!.header.keyframe).toString());
  }
}

describe('an H.264 stream in the browser server', () => {
  test('a tab that decodes H.264 gets every access unit byte for byte from the last keyframe on, and nothing is encoded for it', async () => {
    const server = await startServer();
    const encode = jest.spyOn(codec, 'encode');
    for (let seq = 0; seq < 14; seq++) await feed(server, seq); // keyframes at 0 and 10
    const tab = await openTab(server, 'h264,jpeg');
    for (let seq = 14; seq < 25; seq++) await feed(server, seq);
    await tab.waitForFrames(15);
    expect(tab.seqs).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24]);
    expect(tab.frames.every((f) => f.header.codec === 'h264' && f.header.rung === 0)).toBe(true);
    expectDecodableH264(tab.frames);
    expect(tab.frames[0]!.header).toMatchObject({ keyframe: true, dropped: 0 });
    expect(server.clients.find((c) => c.kind === 'tab')?.tab).toMatchObject({ decodes: 'h264' });
    expect(encode).not.toHaveBeenCalled();
  });

  test('a tab without H.264 (no WebCodecs) gets JPEG of the decoded pictures, encoded only while it watches', async () => {
    const server = await startServer();
    const encode = jest.spyOn(codec, 'encode');
    for (let seq = 0; seq < 5; seq++) await feed(server, seq);
    expect(encode).not.toHaveBeenCalled();
    const tab = await openTab(server, 'jpeg');
    for (let seq = 5; seq < 12; seq++) await feed(server, seq);
    await tab.waitForFrames(7);
    expect(tab.frames.every((f) => f.header.codec === 'jpeg' && f.header.rung >= 1)).toBe(true);
    for (const frame of tab.frames.slice(-3)) {
      const image = await codec.decode(frame.payload, 'jpeg', { width: frame.header.width, height: frame.header.height, channels: 3 });
      expect(readFrameNumber(image)).toBe(frame.header.seq);
    }
    expect(server.clients.find((c) => c.kind === 'tab')?.tab).toMatchObject({ decodes: 'jpeg' });
    await tab.close();
    await waitFor(() => server.clients.length === 0, 'the tab to leave');
    encode.mockClear();
    for (let seq = 12; seq < 15; seq++) await feed(server, seq);
    expect(encode).not.toHaveBeenCalled();
  });

  test('/stream.mjpg of an H.264 stream is JPEG of the decoded pictures', async () => {
    const server = await startServer();
    const parts: Buffer[] = [];
    const res = await new Promise<import('node:http').IncomingMessage>((resolve) => request(`${server.url}stream.mjpg`, resolve).end());
    res.on('data', (chunk: Buffer) => parts.push(chunk));
    await waitFor(() => server.clients.some((c) => c.kind === 'mjpeg'), 'the MJPEG client');
    for (let seq = 0; seq < 4; seq++) await feed(server, seq);
    await waitFor(() => Buffer.concat(parts).includes('X-Frame-Seq: 3'), 'frame 3 as MJPEG');
    expect(Buffer.concat(parts).toString('latin1')).toContain('Content-Type: image/jpeg');
    res.destroy();
  });

  test('a tab that falls behind skips to the next keyframe, every skipped frame declared, and never gets an access unit it cannot decode', async () => {
    const server = await startServer();
    // The page acknowledges each frame 100 ms after the one before: a link far slower than the stream.
    const tab = await openTab(server, 'h264,jpeg', { ack: (frame) => ({ spanMs: 1, spanBytes: frame.payload.length, delayMs: 100 }) });
    // Frames every 20 ms until, after frames skipped for it, a keyframe got through.
    for (let seq = 0; seq < 400 && !(tab.last && tab.last.header.dropped > 0); seq++) {
      await feed(server, seq);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const h264 = tab.frames.filter((f) => f.header.codec === 'h264');
    expect(h264.length).toBeGreaterThan(0);
    expectDecodableH264(tab.frames);
    // What the headers declare never exceeds what is missing (WEBSOCKET.md), and drops happened.
    for (let i = 1; i < tab.frames.length; i++) {
      const [a, b] = [tab.frames[i - 1]!.header, tab.frames[i]!.header];
      expect(b.dropped - a.dropped).toBeLessThanOrEqual(b.seq - a.seq - 1);
    }
    expect(tab.last!.header.dropped).toBeGreaterThan(0);
  });
});
