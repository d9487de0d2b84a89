import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { FrameSink, RawImage } from '@camstream/media';
import { renderViewerPage } from './http-viewer-page';
import type { StatsSnapshot } from './stats';

export interface HttpViewerOptions {
  /** Address to listen on; the CLI chooses '127.0.0.1' by default. */
  host: string;
  /** TCP port; 0 picks a free one (read it back from `port`). */
  port: number;
  /** Shown on the page: the stream's name. */
  title: string;
  /** JPEG encoder for decoded images (raw or PNG streams); JPEG streams never use it. */
  encodeJpeg: (image: RawImage) => Promise<Buffer>;
  /** Open /stream.mjpg and /events connections allowed at once (default 32); more get 503. */
  maxClients?: number;
  /** A client whose socket has not drained for this long is disconnected (default 30 s). */
  stalledClientTimeoutMs?: number;
  log?: (line: string) => void;
}

/** What the viewer knows about one frame. captureTime: wall clock, ms since the Unix epoch. */
export interface FrameMeta {
  seq: number;
  captureTime: number;
  width: number;
  height: number;
}

/** One open streaming connection, as seen by the server. */
export interface ViewerClientInfo {
  kind: 'mjpeg' | 'events';
  /** The `client` query parameter the page sends, if any (links a tab's stream and events). */
  id: string | undefined;
  remote: string;
  /** MJPEG parts or SSE events written. */
  sent: number;
  /** Frames (or events) skipped because the client had not read the previous ones yet. */
  dropped: number;
  /** Bytes waiting in this connection's userland write buffer. */
  bufferedBytes: number;
  /** True while the server waits for 'drain' before writing again. */
  blocked: boolean;
}

/** The JSON of /stats.json and of every SSE event's `viewer` part. */
export interface ViewerStatus {
  title: string;
  /** Open /stream.mjpg connections. */
  streams: number;
  /** Open /events connections (roughly: pages open). */
  pages: number;
  frame: FrameMeta | null;
  /** Milliseconds since the newest frame reached the viewer; null before the first one. */
  frameAgeMs: number | null;
  /** Decoded images not encoded because a newer one arrived while the encoder was busy. */
  encodeSkipped: number;
  /** Figures for the connection whose `client` id asked (SSE only). */
  you?: { dropped: number; sent: number };
}

const BOUNDARY = 'camstreamframe';
const CRLF = Buffer.from('\r\n');
const DEFAULT_MAX_CLIENTS = 32;
const DEFAULT_STALLED_CLIENT_TIMEOUT_MS = 30_000;
const SNAPSHOT_WAIT_MS = 2_000;
/** How long close() lets clients read their final bytes before it cuts the sockets. */
const CLOSE_GRACE_MS = 1_000;
const CLIENT_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

const COMMON_HEADERS = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
} as const;

interface PublishedFrame extends FrameMeta {
  jpeg: Buffer;
  /** The multipart part header, built once per frame and shared by every client. */
  partHeader: Buffer;
  publishedAt: number;
}

interface StreamingClient {
  readonly kind: 'mjpeg' | 'events';
  readonly id: string | undefined;
  readonly res: ServerResponse;
  readonly remote: string;
  sent: number;
  dropped: number;
  /** performance.now() when a write last returned false; undefined while the socket keeps up. */
  blockedSince: number | undefined;
}

interface MjpegClient extends StreamingClient {
  readonly kind: 'mjpeg';
  /** The newest frame not yet sent (latest-wins slot): one reference to a shared frame. */
  pending: PublishedFrame | undefined;
}

interface EventClient extends StreamingClient {
  readonly kind: 'events';
  /** Latest unsent event text per event name (latest-wins per kind). */
  pending: Map<string, string>;
}

interface RawFrame {
  image: RawImage;
  meta: FrameMeta;
}

/**
 * Serves the received stream to browsers over plain HTTP (Node's `http`, no framework):
 * a page with the live video and stats, MJPEG, a snapshot, stats JSON and Server-Sent Events.
 *
 * Frames are held once and fanned out as the same bytes to every client. Each client has its own
 * latest-wins slot: while its socket is full the server skips frames for it (and counts them), so
 * memory stays bounded by about one frame per client whatever the clients do, and a slow client
 * never slows the others or the receiver.
 */
export class HttpViewer implements FrameSink {
  /** It holds the newest decoded image after write() returns, for browsers that connect later. */
  readonly keepsImages = true;
  private readonly mjpegClients = new Set<MjpegClient>();
  private readonly eventClients = new Set<EventClient>();
  private latestFrame: PublishedFrame | undefined;
  private latestStats: StatsSnapshot | null = null;
  /** Newest decoded image not encoded yet (kept while nobody watches, for the next viewer). */
  private unencoded: RawFrame | undefined;
  private encoding = false;
  private encodeSkipped = 0;
  private rawSeq = 0;
  private frameWaiters: Array<() => void> = [];
  private readonly ticker: NodeJS.Timeout;
  private closing: Promise<void> | undefined;
  private readonly log: (line: string) => void;
  private readonly maxClients: number;
  private readonly stalledClientTimeoutMs: number;
  private readonly boundPort: number;

  private constructor(
    private readonly server: Server,
    private readonly options: HttpViewerOptions,
  ) {
    this.log = options.log ?? (() => undefined);
    this.boundPort = (server.address() as AddressInfo).port;
    this.maxClients = options.maxClients ?? DEFAULT_MAX_CLIENTS;
    this.stalledClientTimeoutMs = options.stalledClientTimeoutMs ?? DEFAULT_STALLED_CLIENT_TIMEOUT_MS;
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.handle(req, res));
    // Malformed requests and resets from clients: drop that socket, never the process.
    server.on('clientError', (_err: Error, socket: Socket) => socket.destroy());
    // Viewer status once a second (stall display, viewer count) and the stalled-client check.
    this.ticker = setInterval(() => this.tick(), 1000);
    this.ticker.unref();
  }

  /** Starts the server; rejects with a message naming host:port when it cannot listen. */
  static listen(options: HttpViewerOptions): Promise<HttpViewer> {
    const maxClients = options.maxClients ?? DEFAULT_MAX_CLIENTS;
    if (!Number.isInteger(maxClients) || maxClients < 1) {
      return Promise.reject(new RangeError(`maxClients must be a positive integer, got ${maxClients}`));
    }
    const server = createServer();
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => reject(listenError(options.host, options.port, err));
      server.once('error', onError);
      server.listen(options.port, options.host, () => {
        server.off('error', onError);
        server.on('error', (err) => options.log?.(`browser viewer server error: ${err.message}`));
        resolve(new HttpViewer(server, options));
      });
    });
  }

  /** The port listened on (still readable after close()). */
  get port(): number {
    return this.boundPort;
  }

  get url(): string {
    const host = this.options.host.includes(':') ? `[${this.options.host}]` : this.options.host;
    return `http://${host}:${this.port}/`;
  }

  /** Open /stream.mjpg and /events connections. */
  get clientCount(): number {
    return this.mjpegClients.size + this.eventClients.size;
  }

  /** Every open streaming connection with its counters (for logs, stats and tests). */
  get clients(): ViewerClientInfo[] {
    return [...this.mjpegClients, ...this.eventClients].map((client) => ({
      kind: client.kind,
      id: client.id,
      remote: client.remote,
      sent: client.sent,
      dropped: client.dropped,
      bufferedBytes: client.res.writableLength,
      blocked: client.blockedSince !== undefined,
    }));
  }

  /** A frame that is already JPEG (the stream's own payload): forwarded byte for byte, never re-encoded. */
  publishJpeg(jpeg: Buffer, meta: FrameMeta): void {
    if (this.closing) return;
    // A JPEG stream supersedes any decoded image still waiting for the encoder.
    this.unencoded = undefined;
    this.publish(jpeg, meta);
  }

  /**
   * FrameSink: a decoded image (raw or PNG streams). Encoded to JPEG only when someone watches,
   * latest-wins: at most one encode runs, and a newer image replaces the one waiting. Returns at
   * once (the encode runs in the background, so a slow encode never holds up other sinks); the
   * image must not change afterwards. `meta` is optional: without it, frames are numbered here
   * and stamped with the time of this call.
   */
  async write(image: RawImage, meta?: { seq: number; captureTime: number }): Promise<void> {
    if (this.closing) return;
    const frameMeta: FrameMeta = {
      seq: meta?.seq ?? this.rawSeq++,
      captureTime: meta?.captureTime ?? Date.now(),
      width: image.width,
      height: image.height,
    };
    // Only a replaced image that someone was waiting for counts as skipped.
    if (this.unencoded && this.mjpegClients.size > 0) this.encodeSkipped++;
    this.unencoded = { image, meta: frameMeta };
    if (this.mjpegClients.size > 0) this.pumpEncoder();
  }

  /** Latest receiver stats: stored for /stats.json and sent to every page as one `stats` event. */
  publishStats(stats: StatsSnapshot): void {
    if (this.closing) return;
    this.latestStats = stats;
    for (const client of this.eventClients) {
      this.sendEvent(client, 'stats', JSON.stringify({ stats, viewer: this.status(client.id) }));
    }
  }

  /** Ends every client response, closes the server. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    clearInterval(this.ticker);
    this.unencoded = undefined;
    this.wakeFrameWaiters();
    const streams = [...this.mjpegClients, ...this.eventClients];
    const allEnded = Promise.all(streams.map((client) => new Promise<void>((resolve) => {
      if (client.res.closed) resolve();
      else client.res.once('close', () => resolve());
    })));
    for (const client of streams) {
      if (client.kind === 'mjpeg') client.res.end(`--${BOUNDARY}--\r\n`);
      else client.res.end();
    }
    const serverClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    // Clients that read get their final bytes; clients that do not read are cut after the grace.
    let graceTimer: NodeJS.Timeout | undefined;
    await Promise.race([allEnded, new Promise<void>((resolve) => (graceTimer = setTimeout(resolve, CLOSE_GRACE_MS)))]);
    clearTimeout(graceTimer);
    this.server.closeAllConnections();
    await serverClosed;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    for (const [name, value] of Object.entries(COMMON_HEADERS)) res.setHeader(name, value);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return sendText(res, 405, `method ${req.method ?? '?'} not allowed: this viewer only answers GET and HEAD\n`);
    }
    if (this.closing) return sendText(res, 503, 'the viewer is shutting down\n');
    const url = new URL(req.url ?? '/', 'http://viewer');
    const clientId = url.searchParams.get('client') ?? undefined;
    const id = clientId !== undefined && CLIENT_ID_PATTERN.test(clientId) ? clientId : undefined;
    const head = req.method === 'HEAD';
    switch (url.pathname) {
      case '/':
      case '/index.html':
        return this.servePage(res);
      case '/stream.mjpg':
        return this.serveMjpeg(req, res, id, head);
      case '/snapshot.jpg':
        return void this.serveSnapshot(res);
      case '/stats.json':
        return sendBody(res, 200, 'application/json; charset=utf-8', JSON.stringify({ stats: this.latestStats, viewer: this.status(undefined) }));
      case '/events':
        return this.serveEvents(req, res, id, head);
      default:
        return sendText(res, 404, `not found: ${url.pathname} (try /, /stream.mjpg, /snapshot.jpg, /stats.json or /events)\n`);
    }
  }

  private servePage(res: ServerResponse): void {
    const nonce = randomBytes(16).toString('base64');
    res.setHeader(
      'Content-Security-Policy',
      `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; img-src 'self' blob: data:; ` +
        `connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'`,
    );
    res.setHeader('Referrer-Policy', 'no-referrer');
    sendBody(res, 200, 'text/html; charset=utf-8', renderViewerPage({ title: this.options.title, nonce }));
  }

  /** Refuses a streaming connection beyond maxClients; true when refused. */
  private refuseIfFull(res: ServerResponse): boolean {
    if (this.clientCount < this.maxClients) return false;
    res.setHeader('Retry-After', '5');
    sendText(res, 503, `too many viewers: ${this.clientCount} streaming connections are open (the limit is ${this.maxClients}); try again later\n`);
    return true;
  }

  private serveMjpeg(req: IncomingMessage, res: ServerResponse, id: string | undefined, head: boolean): void {
    if (this.refuseIfFull(res)) return;
    res.writeHead(200, {
      'Content-Type': `multipart/x-mixed-replace; boundary=${BOUNDARY}`,
      Pragma: 'no-cache',
      'X-Accel-Buffering': 'no',
    });
    if (head) return void res.end();
    // Send the headers now: a browser or player shows "connected" before the first frame exists.
    res.flushHeaders();
    req.socket.setNoDelay(true);
    const client: MjpegClient = {
      kind: 'mjpeg', id, res, remote: remoteOf(req), sent: 0, dropped: 0, blockedSince: undefined, pending: undefined,
    };
    this.mjpegClients.add(client);
    res.on('drain', () => {
      client.blockedSince = undefined;
      const frame = client.pending;
      client.pending = undefined;
      if (frame) this.sendFrame(client, frame);
    });
    res.on('close', () => {
      this.mjpegClients.delete(client);
      client.pending = undefined;
      this.log(`browser viewer: ${client.remote} left /stream.mjpg after ${client.sent} frames (${client.dropped} skipped for it); ${this.clientCount} connections open`);
    });
    this.log(`browser viewer: ${client.remote} opened /stream.mjpg; ${this.clientCount} connections open`);
    // New clients see the latest picture at once; if a newer decoded image waits, encode that instead.
    if (this.unencoded) this.pumpEncoder();
    else if (this.latestFrame) this.sendFrame(client, this.latestFrame);
  }

  private serveEvents(req: IncomingMessage, res: ServerResponse, id: string | undefined, head: boolean): void {
    if (this.refuseIfFull(res)) return;
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'X-Accel-Buffering': 'no' });
    if (head) return void res.end();
    req.socket.setNoDelay(true);
    const client: EventClient = {
      kind: 'events', id, res, remote: remoteOf(req), sent: 0, dropped: 0, blockedSince: undefined, pending: new Map(),
    };
    this.eventClients.add(client);
    res.on('drain', () => {
      client.blockedSince = undefined;
      const waiting = [...client.pending];
      client.pending.clear();
      for (const [event, data] of waiting) this.sendEvent(client, event, data);
    });
    res.on('close', () => {
      this.eventClients.delete(client);
      client.pending.clear();
    });
    res.write('retry: 2000\n\n');
    // The page shows the latest figures at once instead of after the next second.
    if (this.latestStats) this.sendEvent(client, 'stats', JSON.stringify({ stats: this.latestStats, viewer: this.status(id) }));
    else this.sendEvent(client, 'viewer', JSON.stringify(this.status(id)));
  }

  private async serveSnapshot(res: ServerResponse): Promise<void> {
    // A decoded image newer than the last JPEG: encode it for this request (someone is watching).
    if (this.unencoded || this.encoding) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => {
          this.frameWaiters.push(resolve);
          this.pumpEncoder();
        }),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, SNAPSHOT_WAIT_MS))),
      ]);
      clearTimeout(timer);
    }
    const frame = this.latestFrame;
    if (!frame) return sendText(res, 503, 'no frame yet: the receiver has not received a picture from the stream\n');
    res.writeHead(200, {
      'Content-Type': 'image/jpeg',
      'Content-Length': frame.jpeg.length,
      'X-Frame-Seq': String(frame.seq),
      'X-Capture-Time': String(frame.captureTime),
    });
    res.end(frame.jpeg);
  }

  private publish(jpeg: Buffer, meta: FrameMeta): void {
    const partHeader = Buffer.from(
      `--${BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n` +
        `X-Frame-Seq: ${meta.seq}\r\nX-Capture-Time: ${meta.captureTime}\r\n\r\n`,
      'latin1',
    );
    const frame: PublishedFrame = {
      seq: meta.seq, captureTime: meta.captureTime, width: meta.width, height: meta.height,
      jpeg, partHeader, publishedAt: performance.now(),
    };
    this.latestFrame = frame;
    for (const client of this.mjpegClients) {
      if (client.blockedSince === undefined) {
        this.sendFrame(client, frame);
      } else {
        // Latest-wins: the frame waiting for this client is replaced, never queued behind.
        if (client.pending) client.dropped++;
        client.pending = frame;
      }
    }
    this.wakeFrameWaiters();
  }

  private sendFrame(client: MjpegClient, frame: PublishedFrame): void {
    const { res } = client;
    if (res.destroyed || res.writableEnded) return;
    // Header, payload, trailer as three writes in one cork: the JPEG is never copied.
    res.cork();
    res.write(frame.partHeader);
    res.write(frame.jpeg);
    const keepsUp = res.write(CRLF);
    res.uncork();
    client.sent++;
    if (!keepsUp) client.blockedSince = performance.now();
  }

  private sendEvent(client: EventClient, event: string, data: string): void {
    const { res } = client;
    if (res.destroyed || res.writableEnded) return;
    if (client.blockedSince !== undefined) {
      if (client.pending.has(event)) client.dropped++;
      client.pending.set(event, data);
      return;
    }
    client.sent++;
    if (!res.write(`event: ${event}\ndata: ${data}\n\n`)) client.blockedSince = performance.now();
  }

  /** Runs the encoder on the newest waiting image, one encode at a time. */
  private pumpEncoder(): void {
    if (this.encoding || !this.unencoded || this.closing) return;
    const { image, meta } = this.unencoded;
    this.unencoded = undefined;
    this.encoding = true;
    this.options
      .encodeJpeg(image)
      .then(
        (jpeg) => {
          if (!this.closing) this.publish(jpeg, meta);
        },
        (err: unknown) => this.log(`browser viewer: JPEG encode of frame ${meta.seq} failed: ${(err as Error)?.message ?? String(err)}`),
      )
      .finally(() => {
        this.encoding = false;
        if (this.mjpegClients.size > 0 || this.frameWaiters.length > 0) this.pumpEncoder();
        // Nothing left to encode: snapshot requests get whatever is latest.
        if (!this.encoding) this.wakeFrameWaiters();
      });
  }

  private wakeFrameWaiters(): void {
    for (const wake of this.frameWaiters.splice(0)) wake();
  }

  private status(clientId: string | undefined): ViewerStatus {
    const frame = this.latestFrame;
    const status: ViewerStatus = {
      title: this.options.title,
      streams: this.mjpegClients.size,
      pages: this.eventClients.size,
      frame: frame ? { seq: frame.seq, captureTime: frame.captureTime, width: frame.width, height: frame.height } : null,
      frameAgeMs: frame ? Math.round(performance.now() - frame.publishedAt) : null,
      encodeSkipped: this.encodeSkipped,
    };
    if (clientId !== undefined) {
      // The tab's own stream connection (the newest, should it have reconnected).
      let mine: MjpegClient | undefined;
      for (const client of this.mjpegClients) if (client.id === clientId) mine = client;
      if (mine) status.you = { dropped: mine.dropped, sent: mine.sent };
    }
    return status;
  }

  private tick(): void {
    const now = performance.now();
    for (const client of [...this.mjpegClients, ...this.eventClients]) {
      if (client.blockedSince !== undefined && now - client.blockedSince > this.stalledClientTimeoutMs) {
        this.log(`browser viewer: ${client.remote} has read nothing for ${Math.round((now - client.blockedSince) / 1000)} s: disconnecting it`);
        client.res.destroy();
      }
    }
    for (const client of this.eventClients) this.sendEvent(client, 'viewer', JSON.stringify(this.status(client.id)));
  }
}

function sendBody(res: ServerResponse, status: number, contentType: string, body: string): void {
  const bytes = Buffer.from(body, 'utf8');
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': bytes.length });
  res.end(bytes);
}

function sendText(res: ServerResponse, status: number, text: string): void {
  sendBody(res, status, 'text/plain; charset=utf-8', text);
}

function remoteOf(req: IncomingMessage): string {
  const { remoteAddress, remotePort } = req.socket;
  return `${remoteAddress ?? '?'}:${remotePort ?? '?'}`;
}

function listenError(host: string, port: number, err: NodeJS.ErrnoException): Error {
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const reason =
    err.code === 'EADDRINUSE' ? 'the port is already in use (choose another port, or 0 for a free one)'
      : err.code === 'EACCES' ? 'permission denied (ports below 1024 need privileges)'
        : err.code === 'EADDRNOTAVAIL' ? 'that address does not belong to this machine'
          : err.message;
  const error = new Error(`cannot start the browser viewer on ${where}: ${reason}`, { cause: err }) as NodeJS.ErrnoException;
  if (err.code !== undefined) error.code = err.code;
  return error;
}
