import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { BrowserServer, type BrowserServerOptions, type ReceiverFigures, type ServerStatus } from './browser-server';
import { EventStream } from './http-streams';
import { remoteOf } from './outbound';
import { loadPageFiles, type PageFiles } from './page-files';

export interface BrowserHubOptions extends Omit<BrowserServerOptions, 'title'> {
  /** The page's title. */
  title: string;
  /**
   * '/' shows a grid of every camera (several cameras, or cameras that appear as they announce
   * themselves); false: the one camera's own page, as a BrowserServer serves it.
   */
  grid: boolean;
  /** The /metrics text (Prometheus), made fresh for each scrape; absent: no /metrics. */
  metrics?: () => string;
}

/** One camera in /stats.json and in the grid page's `cameras` events. */
export interface CameraEntry {
  camera: string;
  stats: ReceiverFigures | null;
  server: ServerStatus;
}

const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
const PAGE_CSP =
  "default-src 'none'; script-src 'self'; worker-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'self'";
/** What a camera's own connections are: routed to its BrowserServer by ?camera=NAME. */
const CAMERA_PATHS = new Set(['/ws', '/stream.mjpg', '/snapshot.jpg', '/events', '/stats.json']);

/**
 * The browser side of a receiver of one or many cameras, on one HTTP server: each camera has
 * its own BrowserServer (fan-out, tabs with their own flow control and rungs, MJPEG, snapshot),
 * which gets that camera's requests: /ws, /stream.mjpg, /snapshot.jpg, /events and /stats.json
 * with ?camera=NAME. The grid page at '/' opens one WebSocket per camera, so each tile has its
 * own window and rung, and a camera with large frames never holds up another's. Without `grid`
 * the one camera's page and URLs are exactly a BrowserServer's (no ?camera needed).
 * /metrics serves the app's Prometheus text; /stats.json (and the grid's /events) every camera.
 */
export class BrowserHub {
  private readonly channels = new Map<string, BrowserServer>();
  private readonly hubEvents = new Set<EventStream>();
  private readonly ticker: NodeJS.Timeout;
  private closing: Promise<void> | undefined;
  private readonly log: (line: string) => void;

  private constructor(
    private readonly server: Server,
    private readonly page: PageFiles,
    private readonly options: BrowserHubOptions,
  ) {
    this.log = options.log ?? (() => undefined);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.handleRequest(req, res));
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.handleUpgrade(req, socket, head));
    server.on('clientError', (_err: Error, socket: Socket) => socket.destroy());
    this.ticker = setInterval(() => this.sendCameras(), 1000);
    this.ticker.unref();
  }

  /** Starts listening; rejects with a message naming host:port when it cannot. */
  static async listen(options: BrowserHubOptions): Promise<BrowserHub> {
    const page = await loadPageFiles();
    const server = createServer();
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        const where = `${options.host.includes(':') ? `[${options.host}]` : options.host}:${options.port}`;
        const reason =
          err.code === 'EADDRINUSE' ? 'the port is already in use (choose another port, or 0 for a free one)'
            : err.code === 'EACCES' ? 'permission denied (ports below 1024 need privileges)'
              : err.code === 'EADDRNOTAVAIL' ? 'that address does not belong to this machine'
                : err.message;
        reject(Object.assign(new Error(`cannot start the browser server on ${where}: ${reason}`, { cause: err }), { code: err.code }));
      };
      server.once('error', onError);
      server.listen(options.port, options.host, () => {
        server.off('error', onError);
        server.on('error', (err) => options.log?.(`browser server error: ${err.message}`));
        resolve(new BrowserHub(server, page, options));
      });
    });
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    const host = this.options.host.includes(':') ? `[${this.options.host}]` : this.options.host;
    return `http://${host}:${this.port}/`;
  }

  /** Camera names, in the order they were added. */
  get cameraNames(): string[] {
    return [...this.channels.keys()];
  }

  /** The camera's server, made the first time it is asked for. */
  camera(name: string): BrowserServer {
    let channel = this.channels.get(name);
    if (!channel) {
      if (!this.options.grid && this.channels.size > 0) throw new Error(`a browser hub without a grid serves one camera; ${name} would be the second`);
      const { grid: _grid, metrics: _metrics, ...options } = this.options;
      channel = BrowserServer.channel({ ...options, port: this.port, title: this.options.grid ? `${name} · ${this.options.title}` : this.options.title }, this.page);
      this.channels.set(name, channel);
    }
    return channel;
  }

  /** Every camera's figures and status, as /stats.json shows them. */
  entries(): CameraEntry[] {
    return [...this.channels].map(([camera, channel]) => {
      const { stats, server } = channel.snapshot();
      return { camera, stats, server };
    });
  }

  /** Ends every connection of every camera, closes the server. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    clearInterval(this.ticker);
    const serverClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    await Promise.all([...[...this.hubEvents].map((stream) => stream.end()), ...[...this.channels.values()].map((channel) => channel.close())]);
    this.server.closeAllConnections();
    await serverClosed;
  }

  /** The grid page's figures of every camera, once a second and to each page as it connects. */
  private sendCameras(stream?: EventStream): void {
    if (this.hubEvents.size === 0) return;
    const data = { title: this.options.title, cameras: this.entries() };
    for (const each of stream ? [stream] : this.hubEvents) each.send('cameras', data);
  }

  private handleRequest(req: IncomingMessage, res: ServerResponse): void {
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    if (this.closing) return sendText(res, 503, 'the browser server is shutting down\n');
    const url = new URL(req.url ?? '/', 'http://browser');
    if (url.pathname === '/metrics' && (req.method === 'GET' || req.method === 'HEAD')) return this.serveMetrics(res);
    if (!this.options.grid) {
      // One camera: its own server answers everything, as if it stood alone.
      const only = this.channels.values().next().value;
      if (only) return only.handleRequest(req, res);
      return sendText(res, 503, 'no camera yet: the receiver has not started its stream\n');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return sendText(res, 405, `method ${req.method ?? '?'} not allowed: this server only answers GET and HEAD\n`);
    }
    const asset = this.page.assets.get(url.pathname);
    if (asset) return sendBody(res, 200, asset.contentType, asset.body);
    if (url.pathname === '/' || url.pathname === '/index.html') {
      res.setHeader('Content-Security-Policy', PAGE_CSP);
      res.setHeader('Referrer-Policy', 'no-referrer');
      return sendBody(res, 200, 'text/html; charset=utf-8', this.page.grid(this.options.title));
    }
    if (!CAMERA_PATHS.has(url.pathname)) {
      return sendText(res, 404, `not found: ${url.pathname} (try /, /metrics, /stats.json, /events, or /ws, /stream.mjpg, /snapshot.jpg with ?camera=NAME)\n`);
    }
    const name = url.searchParams.get('camera');
    if (name === null) {
      if (url.pathname === '/stats.json') return sendBody(res, 200, 'application/json; charset=utf-8', JSON.stringify({ cameras: this.entries() }));
      if (url.pathname === '/events') return this.serveHubEvents(req, res);
      return sendText(res, 400, `several cameras: name one with ?camera=NAME (${this.describeCameras()})\n`);
    }
    const channel = this.channels.get(name);
    if (!channel) return sendText(res, 404, `no camera ${JSON.stringify(name)} (${this.describeCameras()})\n`);
    channel.handleRequest(req, res);
  }

  private handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => undefined);
    const refuse = (status: number, reason: string, text: string) => {
      socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`);
    };
    const url = new URL(req.url ?? '/', 'http://browser');
    const name = url.searchParams.get('camera');
    const channel = name !== null ? this.channels.get(name) : this.options.grid ? undefined : this.channels.values().next().value;
    if (!channel) {
      if (name === null) return refuse(400, 'Bad Request', `several cameras: name one with ?camera=NAME (${this.describeCameras()})\n`);
      return refuse(404, 'Not Found', `no camera ${JSON.stringify(name)} (${this.describeCameras()})\n`);
    }
    channel.handleUpgrade(req, socket, head);
  }

  private serveMetrics(res: ServerResponse): void {
    if (!this.options.metrics) return sendText(res, 404, 'no metrics here\n');
    let text: string;
    try {
      text = this.options.metrics();
    } catch (err) {
      this.log(`browser server: could not render /metrics: ${(err as Error).message}`);
      return sendText(res, 500, 'could not render the metrics\n');
    }
    sendBody(res, 200, PROMETHEUS_CONTENT_TYPE, text);
  }

  private serveHubEvents(req: IncomingMessage, res: ServerResponse): void {
    const limit = this.options.maxClients ?? 32;
    if (this.hubEvents.size >= limit) {
      res.setHeader('Retry-After', '5');
      return sendText(res, 503, `too many pages: ${this.hubEvents.size} are open (the limit is ${limit}); try again later\n`);
    }
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'X-Accel-Buffering': 'no' });
    if (req.method === 'HEAD') return void res.end();
    req.socket.setNoDelay(true);
    const stream = new EventStream(res, undefined, remoteOf(req));
    this.hubEvents.add(stream);
    res.on('close', () => this.hubEvents.delete(stream));
    this.sendCameras(stream);
  }

  private describeCameras(): string {
    const names = this.cameraNames;
    return names.length ? `cameras: ${names.join(', ')}` : 'no camera yet';
  }
}

function sendBody(res: ServerResponse, status: number, contentType: string, body: string | Buffer): void {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': bytes.length });
  res.end(bytes);
}

function sendText(res: ServerResponse, status: number, text: string): void {
  sendBody(res, status, 'text/plain; charset=utf-8', text);
}
