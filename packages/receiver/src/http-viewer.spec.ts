import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { connect, createServer, type Server } from 'node:net';
import type { RawImage } from '@camstream/media';
import { HttpViewer, type HttpViewerOptions } from './http-viewer';
import type { StatsSnapshot } from './stats';

// Real HTTP on loopback, no browser: every request goes through Node's http client.

const open: HttpViewer[] = [];
const openRequests: Array<{ destroy(): void }> = [];

afterEach(async () => {
  for (const req of openRequests.splice(0)) req.destroy();
  await Promise.all(open.splice(0).map((viewer) => viewer.close()));
});

async function startViewer(options: Partial<HttpViewerOptions> = {}): Promise<HttpViewer> {
  const viewer = await HttpViewer.listen({
    host: '127.0.0.1',
    port: 0,
    title: 'test camera',
    encodeJpeg: () => Promise.reject(new Error('this test does not encode')),
    ...options,
  });
  open.push(viewer);
  return viewer;
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function fetchOnce(viewer: HttpViewer, path: string, method = 'GET'): Promise<Reply> {
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

async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
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

function openStream(viewer: HttpViewer, path = '/stream.mjpg'): Promise<StreamClient> {
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

function openEvents(viewer: HttpViewer, path = '/events'): Promise<EventStream> {
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

/** Bytes that look like a JPEG (SOI ... EOI) and differ per frame. */
function fakeJpeg(seq: number, size = 1000): Buffer {
  const bytes = Buffer.alloc(size, seq & 0xff);
  bytes.writeUInt32BE(seq, 4);
  bytes[0] = 0xff;
  bytes[1] = 0xd8;
  bytes[size - 2] = 0xff;
  bytes[size - 1] = 0xd9;
  return bytes;
}

function meta(seq: number) {
  return { seq, captureTime: 1_700_000_000_000 + seq * 50, width: 320, height: 240 };
}

function image(fill: number): RawImage {
  return { width: 4, height: 2, channels: 3, data: Buffer.alloc(24, fill) };
}

const STATS: StatsSnapshot = {
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
  rung: null,
  lowerRungFrames: 0,
};

/** An encoder whose calls finish only when the test says so; tracks how many run at once. */
function controllableEncoder() {
  const calls: Array<{ image: RawImage; finish: () => void; fail: (err: Error) => void }> = [];
  let running = 0;
  let maxRunning = 0;
  const encodeJpeg = (input: RawImage) =>
    new Promise<Buffer>((resolve, reject) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      calls.push({
        image: input,
        finish: () => {
          running--;
          resolve(fakeJpeg(input.data[0]!));
        },
        fail: (err) => {
          running--;
          reject(err);
        },
      });
    });
  return { encodeJpeg, calls, maxRunning: () => maxRunning };
}

describe('HttpViewer', () => {
  test('serves the page with the (escaped) title and the safety headers', async () => {
    const viewer = await startViewer({ title: 'Garage <cam> & "door"' });
    expect(viewer.url).toBe(`http://127.0.0.1:${viewer.port}/`);
    const reply = await fetchOnce(viewer, '/');
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(reply.headers['cache-control']).toBe('no-store');
    expect(reply.headers['x-content-type-options']).toBe('nosniff');
    expect(reply.headers['content-security-policy']).toContain("default-src 'none'");
    const html = reply.body.toString('utf8');
    expect(html).toContain('<title>Garage &#60;cam&#62; &#38; &#34;door&#34; · camstream</title>');
    expect(html).not.toContain('<cam>');
    expect(html).toContain('stream.mjpg');
    expect(html).toContain("new EventSource('events");
    // Self-contained: nothing loaded from elsewhere.
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
  });

  test('/stream.mjpg carries exactly the published JPEG bytes, in order, with seq and capture time', async () => {
    const viewer = await startViewer();
    const client = await openStream(viewer);
    expect(client.res.headers['content-type']).toMatch(/^multipart\/x-mixed-replace; boundary=/);
    expect(client.res.headers['cache-control']).toBe('no-store');
    await waitFor(() => viewer.clientCount === 1, 'the client to register');
    const published = [0, 1, 2, 3, 4].map((seq) => fakeJpeg(seq, 500 + seq * 337));
    published.forEach((jpeg, seq) => viewer.publishJpeg(jpeg, meta(seq)));
    await waitFor(() => client.parts.length === 5, 'five parts');
    client.parts.forEach((part, seq) => {
      expect(part.headers['content-type']).toBe('image/jpeg');
      expect(part.headers['content-length']).toBe(String(published[seq]!.length));
      expect(part.headers['x-frame-seq']).toBe(String(seq));
      expect(part.headers['x-capture-time']).toBe(String(meta(seq).captureTime));
      expect(part.body.equals(published[seq]!)).toBe(true);
    });
  });

  test('a new client gets the latest frame at once', async () => {
    const viewer = await startViewer();
    viewer.publishJpeg(fakeJpeg(1), meta(1));
    viewer.publishJpeg(fakeJpeg(2), meta(2));
    const client = await openStream(viewer);
    await waitFor(() => client.parts.length === 1, 'the latest frame');
    expect(client.parts[0]!.headers['x-frame-seq']).toBe('2');
    expect(client.parts[0]!.body.equals(fakeJpeg(2))).toBe(true);
  });

  test('write(image) encodes only while someone watches, one encode at a time, newest first', async () => {
    const encoder = controllableEncoder();
    const viewer = await startViewer({ encodeJpeg: encoder.encodeJpeg });
    await viewer.write(image(1), { seq: 1, captureTime: 1 });
    await viewer.write(image(2), { seq: 2, captureTime: 2 });
    expect(encoder.calls).toHaveLength(0);

    // A viewer arrives: the newest waiting image is encoded for it.
    const client = await openStream(viewer);
    await waitFor(() => encoder.calls.length === 1, 'the first encode');
    expect(encoder.calls[0]!.image.data[0]).toBe(2);

    // While that encode runs, newer images replace each other instead of queueing.
    for (const fill of [3, 4, 5]) await viewer.write(image(fill), { seq: fill, captureTime: fill });
    expect(encoder.calls).toHaveLength(1);
    encoder.calls[0]!.finish();
    await waitFor(() => encoder.calls.length === 2, 'the second encode');
    expect(encoder.calls[1]!.image.data[0]).toBe(5);
    encoder.calls[1]!.finish();
    await waitFor(() => client.parts.length === 2, 'two parts');
    expect(client.parts.map((part) => part.headers['x-frame-seq'])).toEqual(['2', '5']);
    expect(client.parts[1]!.body.equals(fakeJpeg(5))).toBe(true);
    expect(encoder.maxRunning()).toBe(1);

    // An encode failure is logged, not thrown, and the next image still goes through.
    await viewer.write(image(6), { seq: 6, captureTime: 6 });
    await waitFor(() => encoder.calls.length === 3, 'the third encode');
    encoder.calls[2]!.fail(new Error('codec broke'));
    await viewer.write(image(7), { seq: 7, captureTime: 7 });
    await waitFor(() => encoder.calls.length === 4, 'the fourth encode');
    encoder.calls[3]!.finish();
    await waitFor(() => client.parts.length === 3, 'the part after the failure');

    // The viewer leaves: nothing is encoded any more (write() starts an encode before it
    // returns, or not at all), but the image is kept: a snapshot request encodes it.
    client.destroy();
    await waitFor(() => viewer.clientCount === 0, 'the client to leave');
    await viewer.write(image(8), { seq: 8, captureTime: 8 });
    expect(encoder.calls).toHaveLength(4);
    const snapshot = fetchOnce(viewer, '/snapshot.jpg');
    await waitFor(() => encoder.calls.length === 5, 'the snapshot encode');
    expect(encoder.calls[4]!.image.data[0]).toBe(8);
    encoder.calls[4]!.finish();
    expect((await snapshot).headers['x-frame-seq']).toBe('8');
  });

  test('several clients at once all get every frame', async () => {
    const viewer = await startViewer();
    const clients = await Promise.all([openStream(viewer), openStream(viewer), openStream(viewer)]);
    await waitFor(() => viewer.clientCount === 3, 'three clients');
    // One frame at a time, each once every client has the one before: none is left unread
    // long enough to be replaced by the next (latest wins; that is the stalled-client test).
    for (let seq = 0; seq < 20; seq++) {
      viewer.publishJpeg(fakeJpeg(seq), meta(seq));
      await waitFor(() => clients.every((client) => client.parts.length === seq + 1), `frame ${seq} at every client`);
    }
    for (const client of clients) {
      expect(client.parts.map((part) => Number(part.headers['x-frame-seq']))).toEqual([...Array(20).keys()]);
    }
  });

  test('a client that stops reading gets frames skipped, memory stays bounded, the others keep up', async () => {
    const viewer = await startViewer();
    const stalled = await openStream(viewer, '/stream.mjpg?client=stalled');
    const reading = await openStream(viewer, '/stream.mjpg?client=reading');
    await waitFor(() => viewer.clientCount === 2, 'two clients');
    stalled.res.pause();
    const frameBytes = 256 * 1024;
    const stalledInfo = () => viewer.clients.find((client) => client.id === 'stalled')!;
    let seq = 0;
    // Publish until loopback and socket buffers are full and the server skips frames for it.
    while (stalledInfo().dropped < 10) {
      if (seq > 2000) throw new Error('the server never skipped a frame for the stalled client');
      viewer.publishJpeg(fakeJpeg(seq, frameBytes), meta(seq));
      seq++;
      await new Promise((resolve) => setImmediate(resolve));
    }
    const sentWhenBlocked = stalledInfo().sent;
    expect(stalledInfo().blocked).toBe(true);
    for (let more = 0; more < 100; more++) {
      viewer.publishJpeg(fakeJpeg(seq, frameBytes), meta(seq));
      seq++;
      await new Promise((resolve) => setImmediate(resolve));
    }
    const lastSeq = seq - 1;
    // No more writes for it, and at most about one frame waits in its userland buffer.
    expect(stalledInfo().sent).toBe(sentWhenBlocked);
    expect(stalledInfo().dropped).toBeGreaterThanOrEqual(100);
    expect(stalledInfo().bufferedBytes).toBeLessThan(2 * frameBytes + 64 * 1024);
    // The reading client got the newest frame.
    await waitFor(() => reading.parts.at(-1)?.headers['x-frame-seq'] === String(lastSeq), 'the reader to get the newest frame');

    // Once the stalled client reads again it gets the newest frame, not a backlog.
    stalled.res.resume();
    await waitFor(() => stalled.parts.at(-1)?.headers['x-frame-seq'] === String(lastSeq), 'the stalled client to catch up');
    expect(stalled.parts.length).toBe(sentWhenBlocked + 1);
    const seqs = stalled.parts.map((part) => Number(part.headers['x-frame-seq']));
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(stalledInfo().blocked).toBe(false);
  });

  test('a client that never reads again is disconnected after stalledClientTimeoutMs', async () => {
    const log: string[] = [];
    const viewer = await startViewer({ stalledClientTimeoutMs: 200, log: (line) => log.push(line) });
    const stalled = await openStream(viewer);
    await waitFor(() => viewer.clientCount === 1, 'the client');
    stalled.res.pause();
    /** Taken before each publish, so no later than the moment the client became blocked. */
    let blockedNoLaterThan = 0;
    for (let seq = 0; !viewer.clients[0]?.blocked; seq++) {
      if (seq > 2000) throw new Error('never blocked');
      blockedNoLaterThan = performance.now();
      viewer.publishJpeg(fakeJpeg(seq, 256 * 1024), meta(seq));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await waitFor(() => viewer.clientCount === 0, 'the stalled client to be cut', 3000);
    expect(performance.now() - blockedNoLaterThan).toBeGreaterThanOrEqual(200);
    expect(log.filter((line) => /has read nothing for \d+ s: disconnecting it/.test(line))).toHaveLength(1);
    // Cut by the server, not ended: once it reads again it finds the stream broken off.
    stalled.res.resume();
    await stalled.ended;
    expect(stalled.res.complete).toBe(false);
  });

  test('a client that disconnects is removed', async () => {
    const viewer = await startViewer();
    const mjpeg = await openStream(viewer);
    const events = await openEvents(viewer);
    await waitFor(() => viewer.clientCount === 2, 'both connections');
    expect(viewer.clients.map((client) => client.kind).sort()).toEqual(['events', 'mjpeg']);
    mjpeg.destroy();
    events.res.destroy();
    await waitFor(() => viewer.clientCount === 0, 'clientCount back to 0');
    // Publishing afterwards touches nobody and throws nothing.
    viewer.publishJpeg(fakeJpeg(1), meta(1));
    viewer.publishStats(STATS);
  });

  test('/snapshot.jpg: 503 with a reason before the first frame, then the latest frame', async () => {
    const viewer = await startViewer();
    const none = await fetchOnce(viewer, '/snapshot.jpg');
    expect(none.status).toBe(503);
    expect(none.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(none.body.toString()).toMatch(/no frame yet/);
    viewer.publishJpeg(fakeJpeg(1), meta(1));
    viewer.publishJpeg(fakeJpeg(2), meta(2));
    const snapshot = await fetchOnce(viewer, '/snapshot.jpg');
    expect(snapshot.status).toBe(200);
    expect(snapshot.headers['content-type']).toBe('image/jpeg');
    expect(snapshot.headers['x-frame-seq']).toBe('2');
    expect(snapshot.body.equals(fakeJpeg(2))).toBe(true);
  });

  test('/snapshot.jpg of a raw stream encodes the newest image on request', async () => {
    const encoder = controllableEncoder();
    const viewer = await startViewer({ encodeJpeg: encoder.encodeJpeg });
    await viewer.write(image(9), { seq: 9, captureTime: 9 });
    const reply = fetchOnce(viewer, '/snapshot.jpg');
    await waitFor(() => encoder.calls.length === 1, 'the encode');
    encoder.calls[0]!.finish();
    const snapshot = await reply;
    expect(snapshot.status).toBe(200);
    expect(snapshot.headers['x-frame-seq']).toBe('9');
    expect(snapshot.body.equals(fakeJpeg(9))).toBe(true);
  });

  test('/stats.json and /events deliver the published stats', async () => {
    const viewer = await startViewer();
    const before = JSON.parse((await fetchOnce(viewer, '/stats.json')).body.toString());
    expect(before.stats).toBeNull();
    expect(before.viewer).toMatchObject({ title: 'test camera', streams: 0, frame: null, frameAgeMs: null });

    const mjpeg = await openStream(viewer, '/stream.mjpg?client=tab1');
    const events = await openEvents(viewer, '/events?client=tab1');
    await waitFor(() => viewer.clientCount === 2, 'both connections');
    viewer.publishJpeg(fakeJpeg(7), meta(7));
    viewer.publishStats(STATS);
    viewer.publishStats({ ...STATS, frames: 1254 });
    await waitFor(() => events.events.filter((e) => e.event === 'stats').length === 2, 'two stats events');
    const stats = events.events.filter((e) => e.event === 'stats').map((e) => JSON.parse(e.data));
    expect(stats[0].stats).toEqual(STATS);
    expect(stats[1].stats.frames).toBe(1254);
    expect(stats[1].viewer).toMatchObject({ streams: 1, pages: 1, frame: meta(7), you: { dropped: 0, sent: 1 } });
    expect(events.res.headers['content-type']).toBe('text/event-stream; charset=utf-8');

    const json = await fetchOnce(viewer, '/stats.json');
    expect(json.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(JSON.parse(json.body.toString()).stats).toEqual({ ...STATS, frames: 1254 });
    // The once-a-second viewer status reaches the page without any publishStats.
    await waitFor(() => events.events.some((e) => e.event === 'viewer' && JSON.parse(e.data).frame?.seq === 7), 'a viewer event', 3000);
    mjpeg.destroy();
  });

  test('unknown paths get 404, other methods 405, HEAD gets headers only', async () => {
    const viewer = await startViewer();
    const missing = await fetchOnce(viewer, '/nope');
    expect(missing.status).toBe(404);
    expect(missing.headers['x-content-type-options']).toBe('nosniff');
    const post = await fetchOnce(viewer, '/', 'POST');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    const head = await fetchOnce(viewer, '/stream.mjpg', 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers['content-type']).toMatch(/^multipart\/x-mixed-replace/);
    expect(head.body.length).toBe(0);
    expect(viewer.clientCount).toBe(0);
  });

  test('garbage requests and clients that vanish mid-stream do not disturb the server', async () => {
    const viewer = await startViewer();
    const garbage = connect(viewer.port, '127.0.0.1');
    garbage.on('error', () => undefined);
    garbage.end('NOT HTTP AT ALL\r\n\r\n');
    await new Promise((resolve) => garbage.on('close', resolve));
    const client = await openStream(viewer);
    await waitFor(() => viewer.clientCount === 1, 'the client');
    client.res.socket.resetAndDestroy();
    for (let seq = 0; seq < 20; seq++) viewer.publishJpeg(fakeJpeg(seq, 64 * 1024), meta(seq));
    await waitFor(() => viewer.clientCount === 0, 'the reset client to be removed');
    expect((await fetchOnce(viewer, '/')).status).toBe(200);
  });

  test('beyond maxClients, streaming requests get 503 with a plain-text reason', async () => {
    const viewer = await startViewer({ maxClients: 2 });
    await openStream(viewer);
    await openEvents(viewer);
    await waitFor(() => viewer.clientCount === 2, 'two connections');
    for (const path of ['/stream.mjpg', '/events']) {
      const refused = await fetchOnce(viewer, path);
      expect(refused.status).toBe(503);
      expect(refused.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(refused.body.toString()).toMatch(/too many viewers.*limit is 2/);
    }
    // The page itself is still served.
    expect((await fetchOnce(viewer, '/')).status).toBe(200);
  });

  test('close() ends every client and the server, and is idempotent', async () => {
    const viewer = await startViewer();
    const mjpeg = await openStream(viewer);
    const events = await openEvents(viewer);
    await waitFor(() => viewer.clientCount === 2, 'two connections');
    viewer.publishJpeg(fakeJpeg(1), meta(1));
    const port = viewer.port;
    const eventsEnded = new Promise<void>((resolve) => events.res.on('close', () => resolve()));
    await Promise.all([viewer.close(), viewer.close()]);
    await Promise.all([mjpeg.ended, eventsEnded]);
    expect(mjpeg.res.complete).toBe(true);
    expect(viewer.clientCount).toBe(0);
    await viewer.close();
    await expect(fetchOnce({ port } as HttpViewer, '/')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    // Publishing after close is a no-op.
    viewer.publishJpeg(fakeJpeg(2), meta(2));
    await viewer.write(image(1));
  });

  test('listen names host:port when the port is taken', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as { port: number };
    try {
      await expect(startViewer({ port })).rejects.toMatchObject({
        code: 'EADDRINUSE',
        message: expect.stringContaining(`127.0.0.1:${port}: the port is already in use`),
      });
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});
