import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { connect, createServer, type Server } from 'node:net';
import { OpenCVCodec } from '@camstream/opencv';
import { readFrameNumber } from '@camstream/testkit';
import { StreamFeed, type FedFrame } from '../test/stream-feed';
import { BrowserServer, type BrowserServerOptions, type ReceiverFigures } from './browser-server';
import { waitFor } from './testing/test-tab';

// Real HTTP on loopback, no browser: every request goes through Node's http client.

const WIDTH = 320;
const HEIGHT = 240;
const codec = new OpenCVCodec();
/** The "sender's" codec: its encodes are not the server's. */
const senderCodec = new OpenCVCodec();
const open: BrowserServer[] = [];
const openRequests: Array<{ destroy(): void }> = [];

afterEach(async () => {
  for (const req of openRequests.splice(0)) req.destroy();
  await Promise.all(open.splice(0).map((server) => server.close()));
});

async function startServer(options: Partial<BrowserServerOptions> = {}): Promise<BrowserServer> {
  const server = await BrowserServer.listen({ host: '127.0.0.1', port: 0, title: 'test camera', codec, ...options });
  open.push(server);
  return server;
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function fetchOnce(viewer: { port: number }, path: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: viewer.port, path, method, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

interface Part {
  headers: Record<string, string>;
  body: Buffer;
}

/** A strict incremental multipart/x-mixed-replace parser: boundary line, headers, Content-Length bytes, CRLF. */
class MultipartParser {
  readonly parts: Part[] = [];
  private buffered = Buffer.alloc(0);

  constructor(private readonly boundary: string) {}

  feed(chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    for (;;) {
      const headerEnd = this.buffered.indexOf('\r\n\r\n');
      if (headerEnd < 0) return;
      const lines = this.buffered.subarray(0, headerEnd).toString('latin1').split('\r\n');
      if (lines[0] === `--${this.boundary}--`) return;
      if (lines[0] !== `--${this.boundary}`) throw new Error(`expected the boundary line, got ${JSON.stringify(lines[0])}`);
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        if (colon <= 0) throw new Error(`bad part header line ${JSON.stringify(line)}`);
        headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      const length = Number(headers['content-length']);
      if (!Number.isInteger(length)) throw new Error('part without Content-Length');
      const bodyStart = headerEnd + 4;
      if (this.buffered.length < bodyStart + length + 2) return;
      const body = Buffer.from(this.buffered.subarray(bodyStart, bodyStart + length));
      if (this.buffered.toString('latin1', bodyStart + length, bodyStart + length + 2) !== '\r\n') throw new Error('part not followed by CRLF');
      this.parts.push({ headers, body });
      this.buffered = this.buffered.subarray(bodyStart + length + 2);
    }
  }
}

interface StreamClient {
  res: IncomingMessage;
  parts: Part[];
  ended: Promise<void>;
  destroy(): void;
}

function openStream(viewer: BrowserServer, path = '/stream.mjpg'): Promise<StreamClient> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: viewer.port, path, agent: false }, (res) => {
      const type = res.headers['content-type'] ?? '';
      const boundary = /boundary=([^;]+)/.exec(type)?.[1];
      if (res.statusCode !== 200 || !boundary) {
        reject(new Error(`stream answered ${res.statusCode} ${type}`));
        return;
      }
      const parser = new MultipartParser(boundary);
      res.on('data', (chunk: Buffer) => parser.feed(chunk));
      const ended = new Promise<void>((done) => res.on('close', () => done()));
      resolve({ res, parts: parser.parts, ended, destroy: () => req.destroy() });
    });
    req.on('error', reject);
    openRequests.push(req);
    req.end();
  });
}

interface EventStream {
  events: Array<{ event: string; data: string }>;
  res: IncomingMessage;
}

function openEvents(viewer: BrowserServer, path = '/events'): Promise<EventStream> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: viewer.port, path, agent: false }, (res) => {
      const stream: EventStream = { events: [], res };
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        let end: number;
        while ((end = text.indexOf('\n\n')) >= 0) {
          const block = text.slice(0, end);
          text = text.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data !== undefined) stream.events.push({ event, data });
        }
      });
      resolve(stream);
    });
    req.on('error', reject);
    openRequests.push(req);
    req.end();
  });
}

const STATS: ReceiverFigures = {
  seconds: 1,
  fps: 19.9,
  decodedFps: 19.9,
  shownFps: 19.9,
  mbps: 3.21,
  latencyMs: { p50: 4.5, p95: 7.25, p99: 9.5 },
  frames: 1234,
  shown: 1233,
  senderDropped: 2,
  skipped: 1,
  gaps: 0,
  corrupt: 0,
};

function jpegFeed(server: BrowserServer, width = WIDTH, height = HEIGHT): StreamFeed {
  return new StreamFeed(server, senderCodec, { width, height });
}

/** Publishes one real 1080p JPEG again and again under new frame numbers: large frames at no encoding cost. */
async function repeatingFeed(server: BrowserServer): Promise<() => Promise<FedFrame>> {
  const feed = jpegFeed(server, 1920, 1080);
  const first = (await feed.prepare())!;
  let seq = first.seq;
  return async () => {
    const frame = { ...first, seq: ++seq };
    await feed.publish(frame);
    return frame;
  };
}

function partFor(part: Part, frame: FedFrame): void {
  expect(part.headers['content-type']).toBe('image/jpeg');
  expect(part.headers['x-frame-seq']).toBe(String(frame.seq));
  expect(part.headers['x-capture-time']).toBe(String(frame.captureTime));
  expect(part.headers['content-length']).toBe(String(frame.jpeg!.length));
  expect(part.body.equals(frame.jpeg!)).toBe(true);
}

describe('BrowserServer over HTTP', () => {
  test('serves the page with the (escaped) title, its own script and style, and a strict CSP', async () => {
    const server = await startServer({ title: 'Garage <cam> & "door"' });
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/`);
    const reply = await fetchOnce(server, '/');
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(reply.headers['cache-control']).toBe('no-store');
    expect(reply.headers['x-content-type-options']).toBe('nosniff');
    const csp = reply.headers['content-security-policy'];
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self';");
    expect(csp).toContain("style-src 'self';");
    expect(csp).not.toMatch(/unsafe-inline|nonce-/);
    const html = reply.body.toString('utf8');
    expect(html).toContain('<title>Garage &#60;cam&#62; &#38; &#34;door&#34; · camstream</title>');
    expect(html).not.toContain('<cam>');
    expect(html).not.toContain('{{title}}');
    // No inline script or style: the CSP would block them.
    expect(html).toContain('<script type="module" src="viewer.js"></script>');
    expect(html).not.toMatch(/<script>|<style|style="/);
    // Self-contained: nothing loaded from elsewhere.
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);

    const script = await fetchOnce(server, '/viewer.js');
    expect(script.status).toBe(200);
    expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(script.body.toString()).toContain("new URL('ws', location.href)");
    const style = await fetchOnce(server, '/viewer.css');
    expect(style.headers['content-type']).toBe('text/css; charset=utf-8');
  });

  test('/stream.mjpg carries exactly the received JPEG bytes, in order, with seq and capture time', async () => {
    const server = await startServer();
    const client = await openStream(server);
    expect(client.res.headers['content-type']).toMatch(/^multipart\/x-mixed-replace; boundary=/);
    expect(client.res.headers['cache-control']).toBe('no-store');
    await waitFor(() => server.clientCount === 1, 'the client to register');
    const feed = jpegFeed(server);
    const fed: FedFrame[] = [];
    for (let i = 0; i < 5; i++) fed.push(await feed.next());
    await waitFor(() => client.parts.length === 5, 'five parts');
    client.parts.forEach((part, i) => partFor(part, fed[i]!));
  });

  test('a new client gets the latest frame at once', async () => {
    const server = await startServer();
    const feed = jpegFeed(server);
    await feed.next();
    const latest = await feed.next();
    const client = await openStream(server);
    await waitFor(() => client.parts.length === 1, 'the latest frame');
    partFor(client.parts[0]!, latest);
  });

  test('a player that joins gets the newest received frame, then only newer ones; after a stream restart, the new stream', async () => {
    const server = await startServer();
    const feed = jpegFeed(server);
    const frames: FedFrame[] = [];
    for (let i = 0; i < 4; i++) frames.push((await feed.prepare())!);
    // The receiver has three frames and has decoded none of them yet.
    for (const f of frames.slice(0, 3)) server.received({ seq: f.seq, captureTime: f.captureTime, width: WIDTH, height: HEIGHT, encoding: 'jpeg' }, f.jpeg!);
    const client = await openStream(server);
    await waitFor(() => client.parts.length === 1, 'the newest frame');
    partFor(client.parts[0]!, frames[2]!);
    for (const f of frames.slice(0, 3)) await server.write(f.image, { seq: f.seq, captureTime: f.captureTime });
    await feed.publish(frames[3]!);
    await waitFor(() => client.parts.length === 2, 'the next frame');
    partFor(client.parts[1]!, frames[3]!);
    expect(server.clients[0]!.dropped).toBe(0);

    // The sender restarted: its frame numbers begin again, and they reach the player.
    const restarted = jpegFeed(server);
    const first = await restarted.next();
    expect(first.seq).toBeLessThan(frames[3]!.seq);
    await waitFor(() => client.parts.length === 3, 'the restarted stream');
    partFor(client.parts[2]!, first);
  });

  test('a raw stream is encoded only while someone watches, once per frame, and an image that comes while one is encoded is skipped', async () => {
    const server = await startServer();
    const feed = new StreamFeed(server, senderCodec, { width: WIDTH, height: HEIGHT, encoding: 'raw-bgr' });
    const encodes = jest.spyOn(codec, 'encode');
    try {
      await feed.next();
      await feed.next();
      expect(encodes).not.toHaveBeenCalled();

      // Two players arrive: each frame is encoded once for both.
      const clients = [await openStream(server), await openStream(server)];
      await waitFor(() => server.clientCount === 2, 'two clients');
      const shown = await feed.next();
      expect(encodes).toHaveBeenCalledTimes(1);
      await waitFor(() => clients.every((client) => client.parts.length === 1), 'the frame at both');
      for (const client of clients) {
        expect(client.parts[0]!.headers['x-frame-seq']).toBe(String(shown.seq));
        expect(client.parts[0]!.body.equals(clients[0]!.parts[0]!.body)).toBe(true);
      }
      const decoded = await codec.decode(clients[0]!.parts[0]!.body, 'jpeg', { width: WIDTH, height: HEIGHT, channels: 3 });
      expect(readFrameNumber(decoded)).toBe(shown.seq);

      // write() resolves once the image is encoded; one that comes meanwhile is skipped, not queued.
      const a = (await feed.prepare())!;
      const b = (await feed.prepare())!;
      const writing = server.write(a.image, { seq: a.seq, captureTime: a.captureTime });
      await server.write(b.image, { seq: b.seq, captureTime: b.captureTime });
      await writing;
      expect(encodes).toHaveBeenCalledTimes(2);
      const status = JSON.parse((await fetchOnce(server, '/stats.json')).body.toString());
      expect(status.server.imagesSkipped).toBe(1);
      await waitFor(() => clients[0]!.parts.length === 2, 'the frame encoded');
      expect(clients[0]!.parts[1]!.headers['x-frame-seq']).toBe(String(a.seq));

      // The players leave: nothing is encoded any more.
      clients.forEach((client) => client.destroy());
      await waitFor(() => server.clientCount === 0, 'the clients to leave');
      encodes.mockClear();
      await feed.next();
      expect(encodes).not.toHaveBeenCalled();
    } finally {
      encodes.mockRestore();
    }
  });

  test('several clients at once all get every frame', async () => {
    const server = await startServer();
    const clients = await Promise.all([openStream(server), openStream(server), openStream(server)]);
    await waitFor(() => server.clientCount === 3, 'three clients');
    const feed = jpegFeed(server);
    const fed: FedFrame[] = [];
    // One frame at a time, each once every client has the one before: none is left unread
    // long enough to be replaced by the next (latest wins; that is the stalled-client test).
    for (let i = 0; i < 20; i++) {
      fed.push(await feed.next());
      await waitFor(() => clients.every((client) => client.parts.length === i + 1), `frame ${i} at every client`);
    }
    for (const client of clients) {
      expect(client.parts.map((part) => Number(part.headers['x-frame-seq']))).toEqual(fed.map((f) => f.seq));
    }
  });

  test('a client that stops reading gets frames skipped, memory stays bounded, the others keep up', async () => {
    const server = await startServer();
    const stalled = await openStream(server, '/stream.mjpg?client=stalled');
    const reading = await openStream(server, '/stream.mjpg?client=reading');
    await waitFor(() => server.clientCount === 2, 'two clients');
    stalled.res.pause();
    // Large frames fill loopback and socket buffers quickly.
    const next = await repeatingFeed(server);
    const stalledInfo = () => server.clients.find((client) => client.id === 'stalled')!;
    let published = 0;
    let last = await next();
    const frameBytes = last.jpeg!.length;
    // Publish until the server skips frames for it.
    while (stalledInfo().dropped < 10) {
      if (published++ > 5000) throw new Error('the server never skipped a frame for the stalled client');
      last = await next();
    }
    const sentWhenBlocked = stalledInfo().sent;
    expect(stalledInfo().blocked).toBe(true);
    for (let more = 0; more < 30; more++) last = await next();
    // No more writes for it, and at most about one frame waits in its userland buffer.
    expect(stalledInfo().sent).toBe(sentWhenBlocked);
    expect(stalledInfo().dropped).toBeGreaterThanOrEqual(30);
    expect(stalledInfo().bufferedBytes).toBeLessThan(2 * frameBytes + 64 * 1024);
    // The reading client got the newest frame.
    await waitFor(() => reading.parts.at(-1)?.headers['x-frame-seq'] === String(last!.seq), 'the reader to get the newest frame');

    // Once the stalled client reads again it gets the newest frame, not a backlog.
    stalled.res.resume();
    await waitFor(() => stalled.parts.at(-1)?.headers['x-frame-seq'] === String(last!.seq), 'the stalled client to catch up');
    expect(stalled.parts.length).toBe(sentWhenBlocked + 1);
    const seqs = stalled.parts.map((part) => Number(part.headers['x-frame-seq']));
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(stalledInfo().blocked).toBe(false);
  });

  test('a client that never reads again is disconnected after stalledClientTimeoutMs', async () => {
    const log: string[] = [];
    const server = await startServer({ stalledClientTimeoutMs: 200, log: (line) => log.push(line) });
    const stalled = await openStream(server);
    await waitFor(() => server.clientCount === 1, 'the client');
    stalled.res.pause();
    // A live stream goes on: the client stays blocked until the server cuts it.
    const next = await repeatingFeed(server);
    const deadline = Date.now() + 5000;
    /** Taken whenever the client was seen not blocked, so no later than the moment it last became blocked. */
    let blockedNoLaterThan = performance.now();
    while (server.clientCount > 0) {
      if (Date.now() > deadline) throw new Error(`not cut after 5 s: ${JSON.stringify(server.clients)}`);
      if (!server.clients[0]?.blocked) blockedNoLaterThan = performance.now();
      await next();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(performance.now() - blockedNoLaterThan).toBeGreaterThanOrEqual(200);
    expect(log.filter((line) => /mjpeg \S+ has read nothing for \d+ s: disconnecting it/.test(line))).toHaveLength(1);
    // Cut by the server, not ended: once it reads again it finds the stream broken off.
    stalled.res.resume();
    await stalled.ended;
    expect(stalled.res.complete).toBe(false);
  });

  test('a client that disconnects is removed', async () => {
    const server = await startServer();
    const mjpeg = await openStream(server);
    const events = await openEvents(server);
    await waitFor(() => server.clientCount === 2, 'both connections');
    expect(server.clients.map((client) => client.kind).sort()).toEqual(['events', 'mjpeg']);
    mjpeg.destroy();
    events.res.destroy();
    await waitFor(() => server.clientCount === 0, 'clientCount back to 0');
    // Publishing afterwards touches nobody and throws nothing.
    await jpegFeed(server).next();
    server.publishStats(STATS);
  });

  test('/snapshot.jpg: 503 with a reason before the first frame, then the latest frame', async () => {
    const server = await startServer({});
    const none = await fetchOnce(server, '/snapshot.jpg');
    expect(none.status).toBe(503);
    expect(none.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(none.body.toString()).toMatch(/no frame yet/);
    const feed = jpegFeed(server);
    await feed.next();
    const latest = await feed.next();
    const snapshot = await fetchOnce(server, '/snapshot.jpg');
    expect(snapshot.status).toBe(200);
    expect(snapshot.headers['content-type']).toBe('image/jpeg');
    expect(snapshot.headers['x-frame-seq']).toBe(String(latest.seq));
    expect(snapshot.body.equals(latest.jpeg!)).toBe(true);
  });

  test('/snapshot.jpg of a raw stream nobody watches encodes the next image', async () => {
    const server = await startServer();
    const feed = new StreamFeed(server, senderCodec, { width: WIDTH, height: HEIGHT, encoding: 'raw-bgr' });
    const before = await feed.next();
    // The server keeps no image: the request waits for the next frame, and gets that one.
    let answered = false;
    const reply = fetchOnce(server, '/snapshot.jpg').finally(() => (answered = true));
    const published: number[] = [];
    while (!answered) {
      published.push((await feed.next()).seq);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const snapshot = await reply;
    expect(snapshot.status).toBe(200);
    const seq = Number(snapshot.headers['x-frame-seq']);
    expect(published).toContain(seq);
    expect(seq).toBeGreaterThan(before.seq);
    const decoded = await codec.decode(snapshot.body, 'jpeg', { width: WIDTH, height: HEIGHT, channels: 3 });
    expect(readFrameNumber(decoded)).toBe(seq);
  });

  test('/stats.json and /events deliver the published stats and each page its own figures', async () => {
    const server = await startServer();
    const before = JSON.parse((await fetchOnce(server, '/stats.json')).body.toString());
    expect(before.stats).toBeNull();
    expect(before.server).toMatchObject({ title: 'test camera', tabs: 0, mjpeg: 0, frame: null, frameAgeMs: null });

    const mjpeg = await openStream(server, '/stream.mjpg?client=tab1');
    const events = await openEvents(server, '/events?client=tab1');
    await waitFor(() => server.clientCount === 2, 'both connections');
    const frame = await jpegFeed(server).next();
    await waitFor(() => mjpeg.parts.length === 1, 'the frame');
    server.publishStats(STATS);
    server.publishStats({ ...STATS, frames: 1254 });
    await waitFor(() => events.events.filter((e) => e.event === 'stats').length === 2, 'two stats events');
    const stats = events.events.filter((e) => e.event === 'stats').map((e) => JSON.parse(e.data));
    expect(stats[0].stats).toEqual(STATS);
    expect(stats[1].stats.frames).toBe(1254);
    expect(stats[1].server).toMatchObject({
      mjpeg: 1, tabs: 0, pages: 1,
      frame: { seq: frame.seq, captureTime: frame.captureTime, width: WIDTH, height: HEIGHT },
      you: { dropped: 0, sent: 1 },
    });
    expect(events.res.headers['content-type']).toBe('text/event-stream; charset=utf-8');

    const json = await fetchOnce(server, '/stats.json');
    expect(json.headers['content-type']).toBe('application/json; charset=utf-8');
    const body = JSON.parse(json.body.toString());
    expect(body.stats).toEqual({ ...STATS, frames: 1254 });
    expect(body.clients.map((c: { kind: string }) => c.kind).sort()).toEqual(['events', 'mjpeg']);
    // The once-a-second status reaches the page without any publishStats, with the figures in it.
    await waitFor(() => events.events.some((e) => e.event === 'status' && JSON.parse(e.data).stats?.frames === 1254), 'a status event', 3000);
    mjpeg.destroy();
  });

  test('unknown paths get 404, other methods 405, HEAD gets headers only', async () => {
    const server = await startServer();
    const missing = await fetchOnce(server, '/nope');
    expect(missing.status).toBe(404);
    expect(missing.headers['x-content-type-options']).toBe('nosniff');
    expect(missing.body.toString()).toMatch(/not found: \/nope/);
    const post = await fetchOnce(server, '/', 'POST');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    const head = await fetchOnce(server, '/stream.mjpg', 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers['content-type']).toMatch(/^multipart\/x-mixed-replace/);
    expect(head.body.length).toBe(0);
    expect(server.clientCount).toBe(0);
    const plainWs = await fetchOnce(server, '/ws');
    expect(plainWs.status).toBe(426);
  });

  test('garbage requests and clients that vanish mid-stream do not disturb the server', async () => {
    const server = await startServer();
    const garbage = connect(server.port, '127.0.0.1');
    garbage.on('error', () => undefined);
    garbage.end('NOT HTTP AT ALL\r\n\r\n');
    await new Promise((resolve) => garbage.on('close', resolve));
    const client = await openStream(server);
    await waitFor(() => server.clientCount === 1, 'the client');
    client.res.socket.resetAndDestroy();
    const next = await repeatingFeed(server);
    for (let i = 0; i < 20; i++) await next();
    await waitFor(() => server.clientCount === 0, 'the reset client to be removed');
    expect((await fetchOnce(server, '/')).status).toBe(200);
  });

  test('beyond maxClients, streaming requests get 503 with a plain-text reason', async () => {
    const server = await startServer({ maxClients: 2 });
    await openStream(server);
    await openEvents(server);
    await waitFor(() => server.clientCount === 2, 'two connections');
    for (const path of ['/stream.mjpg', '/events']) {
      const refused = await fetchOnce(server, path);
      expect(refused.status).toBe(503);
      expect(refused.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(refused.body.toString()).toMatch(/too many viewers.*limit is 2/);
    }
    // The page itself is still served.
    expect((await fetchOnce(server, '/')).status).toBe(200);
  });

  test('close() ends every client and the server, and is idempotent', async () => {
    const server = await startServer();
    const mjpeg = await openStream(server);
    const events = await openEvents(server);
    await waitFor(() => server.clientCount === 2, 'two connections');
    const feed = jpegFeed(server);
    await feed.next();
    const port = server.port;
    const eventsEnded = new Promise<void>((resolve) => events.res.on('close', () => resolve()));
    await Promise.all([server.close(), server.close()]);
    await Promise.all([mjpeg.ended, eventsEnded]);
    expect(mjpeg.res.complete).toBe(true);
    expect(server.clientCount).toBe(0);
    await server.close();
    await expect(fetchOnce({ port }, '/')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    // Publishing after close is a no-op.
    await feed.next();
  });

  test('listen names host:port when the port is taken, and refuses bad options', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as { port: number };
    try {
      await expect(startServer({ port })).rejects.toMatchObject({
        code: 'EADDRINUSE',
        message: expect.stringContaining(`127.0.0.1:${port}: the port is already in use`),
      });
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
    await expect(startServer({ maxClients: 0 })).rejects.toThrow('maxClients must be a positive integer, got 0');
    await expect(startServer({ jpegQuality: 101 })).rejects.toThrow('jpegQuality must be an integer in 1..100, got 101');
  });
});
