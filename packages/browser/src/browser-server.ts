import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { FanOut, relativeRungSize, rungLadder, RungEncoder, type ChainLink, type Outlet, type RungSpec } from '@camstream/fanout';
import type { FrameCodec, FrameMeta, FrameSink, RawImage } from '@camstream/media';
import type { Encoding, FlowWindowOptions } from '@camstream/protocol';
import { WebSocketServer, type WebSocket } from 'ws';
import { EventStream, MjpegStream, MJPEG_BOUNDARY } from './http-streams';
import { remoteOf, type ClientInfo, type OutboundStream, type ServedFrame } from './outbound';
import { loadPageFiles, type PageFiles } from './page-files';
import { CLOSE_STREAM_RESTARTED, TabSocket } from './tab-socket';

export interface BrowserServerOptions {
  /** Address to listen on; the receiver's CLI chooses '127.0.0.1' by default. */
  host: string;
  /** TCP port; 0 picks a free one (read it back from `port`). */
  port: number;
  /** Shown on the page: the stream's name. */
  title: string;
  /** Encodes rung 0 of raw, PNG and H.264 streams to JPEG (for pages and players that need it), and the lower rungs of every stream. */
  codec: FrameCodec;
  /** JPEG quality of rung 0 when the server encodes it, and the base of the lower rungs (default 80). */
  jpegQuality?: number;
  /** Off: tabs always get rung 0, and only the flow window's drops bound their latency (default on). */
  adapt?: boolean;
  /** Open /ws, /stream.mjpg and /events connections allowed at once (default 32); more are refused with 503. */
  maxClients?: number;
  /** A connection whose peer has taken no bytes (or, for a tab, acknowledged no frame) for this long is cut (default 30 s). */
  stalledClientTimeoutMs?: number;
  /** Each tab's flow window (PROTOCOL.md 4.3); the defaults are the sender's. */
  flow?: FlowWindowOptions;
  log?: (line: string) => void;
}

/** What the server needs to know of a frame the receiver got, before it is decoded (a protocol FrameHeader fits). */
export interface ReceivedFrame {
  seq: number;
  captureTime: number;
  width: number;
  height: number;
  encoding: Encoding;
  /** The sender's quality rung of this frame (absent or 0: the stream itself). */
  rung?: number;
  /** An H.264 frame that decoding can start at. */
  keyframe?: boolean;
}

/** The receiver's figures the page shows (its StatsSnapshot fits). */
export interface ReceiverFigures {
  seconds: number;
  fps: number;
  decodedFps: number;
  /** Frames per second that every sink of the receiver took (absent from receivers that do not count them). */
  shownFps?: number;
  mbps: number;
  latencyMs: { p50: number; p95: number; p99: number } | null;
  frames: number;
  shown?: number;
  /** Null when the receiver's wire cannot tell (the tutorial's declares no drops). */
  senderDropped: number | null;
  skipped: number;
  /** Null when the receiver's wire has no sequence numbers (the tutorial's). */
  gaps: number | null;
  corrupt: number;
  /** Frames lost with a broken connection (NATS), apart from gaps (absent from receivers that do not count them). */
  lostInTransport?: number;
  /** Messages refused unread (NATS: unsigned, wrongly signed, replayed). */
  refused?: number;
  /** Whether the camera sends: no frame yet, frames coming, or none for a few frame intervals. */
  state?: 'waiting' | 'live' | 'stopped';
}

/** Seq, capture time and size of a frame. */
export interface FrameInfo {
  seq: number;
  captureTime: number;
  width: number;
  height: number;
}

/** The JSON of /stats.json's `server` part and of every SSE event's. */
export interface ServerStatus {
  title: string;
  /** Open WebSocket connections (tabs showing the video). */
  tabs: number;
  /** Open /stream.mjpg connections. */
  mjpeg: number;
  /** Open /events connections (roughly: pages open). */
  pages: number;
  frame: FrameInfo | null;
  /** Milliseconds since the newest frame reached the server; null before the first one. */
  frameAgeMs: number | null;
  /** Decoded images not published because the previous one was still being encoded. */
  imagesSkipped: number;
  /** Figures of the connection whose `client` id asked (SSE only). */
  you?: { dropped: number; sent: number; rung?: number };
}

const DEFAULT_MAX_CLIENTS = 32;
const DEFAULT_STALLED_CLIENT_TIMEOUT_MS = 30_000;
const DEFAULT_JPEG_QUALITY = 80;
const SNAPSHOT_WAIT_MS = 2_000;
/** How long close() lets clients read their final bytes before it cuts the sockets. */
const CLOSE_GRACE_MS = 1_000;
/** Received JPEG payloads kept until their decoded image arrives (decoding runs a few frames behind). */
const MAX_KEPT_PAYLOADS = 8;
/** Until a JPEG rung was measured, its frames are guessed at this share of the raw picture (720p JPEG q80: 1.6 % on the test pattern, 2.9 % on a noisy clip). */
const JPEG_SHARE_OF_RAW = 0.02;
/** Acks are about 80 bytes; nothing the page sends is larger. */
const MAX_PAGE_MESSAGE_BYTES = 1024;
const CLIENT_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

const COMMON_HEADERS = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
} as const;

/** No inline script or style: the page is its own files. connect-src 'self' covers ws: to this host. */
const PAGE_CSP =
  "default-src 'none'; script-src 'self'; worker-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'self'";

/**
 * Serves the received stream to browsers over plain HTTP (Node's `http` and `ws`, no framework):
 * the page (page/index.html, viewer.js, viewer.css), the video over a WebSocket at /ws with
 * per-tab flow control and quality rungs, MJPEG at /stream.mjpg, the latest frame at
 * /snapshot.jpg, figures at /stats.json and as Server-Sent Events at /events.
 *
 * Frames are encoded once per rung in use and fanned out as the same bytes to every connection
 * on that rung. Every connection writes through its own latest-wins writer, so memory stays
 * bounded by about one frame per connection whatever the clients do, and a slow client never
 * slows the others or the receiver.
 *
 * Input: `received()` with every frame as it arrives (JPEG payloads are kept to be forwarded
 * byte for byte as rung 0), and `write()` (FrameSink) with the decoded image, which is what gets
 * published. write() resolves once the server no longer reads the image: it keeps no image.
 */
export class BrowserServer implements FrameSink {
  readonly keepsImages = false;
  private readonly streams = new Set<OutboundStream>();
  private readonly tabs = new Set<TabSocket>();
  /** Everything the fan-out delivers to: tabs, MJPEG streams, snapshot requests waiting for a frame. */
  private readonly outlets = new Set<Outlet<ServedFrame>>();
  /** Snapshot requests waiting for the next rung-0 frame: called with none on close. */
  private readonly snapshotWaiters = new Set<(frame: ServedFrame | undefined) => void>();
  private fanOut: FanOut<ServedFrame> | undefined;
  private ladderKey = '';
  private ladder: readonly RungSpec[] = [];
  /** The stream is H.264: tabs that decode it get its access units as rung 0 (see forwardH264). */
  private h264Stream = false;
  /** Forwards the received H.264 access units, every one, to the tabs on rung 0. */
  private h264: { fanOut: FanOut<ServedFrame>; key: string } | undefined;
  /** Where the last forwarded access unit stands in its chain; undefined before the first, and after a restart. */
  private h264Chain: { seq: number; link: ChainLink } | undefined;
  private h264Sequence = 0;
  /** Received rung-0 JPEG payloads by seq, until their decoded image is published. */
  private readonly jpegPayloads = new Map<number, { payload: Buffer; width: number; height: number }>();
  /** The newest rung-0 JPEG: for /snapshot.jpg and for MJPEG clients that just connected. */
  private latestTop: ServedFrame | undefined;
  private latestFrame: { info: FrameInfo; at: number } | undefined;
  private latestStats: ReceiverFigures | null = null;
  private lastPublishedSeq: number | undefined;
  private publishing = false;
  private imagesSkipped = 0;
  private unnumbered = 0;
  private readonly wss: WebSocketServer;
  private readonly ticker: NodeJS.Timeout;
  private closing: Promise<void> | undefined;
  private readonly log: (line: string) => void;
  private readonly maxClients: number;
  private readonly stalledClientTimeoutMs: number;
  private readonly jpegQuality: number;
  private readonly boundPort: number;

  /** `server`: its own HTTP server; undefined for one camera of a BrowserHub, which routes requests to it. */
  private constructor(
    private readonly server: Server | undefined,
    private readonly page: PageFiles,
    private readonly options: BrowserServerOptions,
  ) {
    this.log = options.log ?? (() => undefined);
    this.boundPort = server ? (server.address() as AddressInfo).port : options.port;
    this.maxClients = options.maxClients ?? DEFAULT_MAX_CLIENTS;
    this.stalledClientTimeoutMs = options.stalledClientTimeoutMs ?? DEFAULT_STALLED_CLIENT_TIMEOUT_MS;
    this.jpegQuality = options.jpegQuality ?? DEFAULT_JPEG_QUALITY;
    this.wss = new WebSocketServer({ noServer: true, maxPayload: MAX_PAGE_MESSAGE_BYTES, perMessageDeflate: false, clientTracking: false });
    server?.on('request', (req: IncomingMessage, res: ServerResponse) => this.handleRequest(req, res));
    server?.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.handleUpgrade(req, socket, head));
    // Malformed requests and resets from clients: drop that socket, never the process.
    server?.on('clientError', (_err: Error, socket: Socket) => socket.destroy());
    // Once a second: the status for every page (stall display, viewer count) and the stall check.
    this.ticker = setInterval(() => this.tick(), 1000);
    this.ticker.unref();
  }

  /** Starts the server; rejects with a message naming host:port when it cannot listen. */
  static async listen(options: BrowserServerOptions): Promise<BrowserServer> {
    checkOptions(options);
    const page = await loadPageFiles();
    const server = createServer();
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => reject(listenError(options.host, options.port, err));
      server.once('error', onError);
      server.listen(options.port, options.host, () => {
        server.off('error', onError);
        server.on('error', (err) => options.log?.(`browser server error: ${err.message}`));
        resolve(new BrowserServer(server, page, options));
      });
    });
  }

  /**
   * One camera's server without an HTTP server of its own: a BrowserHub hands it the requests for
   * that camera (handleRequest, handleUpgrade). `options.host` and `port` are the hub's, for its URL.
   */
  static channel(options: BrowserServerOptions, page: PageFiles): BrowserServer {
    checkOptions(options);
    return new BrowserServer(undefined, page, options);
  }

  /** The port listened on (still readable after close()). */
  get port(): number {
    return this.boundPort;
  }

  get url(): string {
    const host = this.options.host.includes(':') ? `[${this.options.host}]` : this.options.host;
    return `http://${host}:${this.port}/`;
  }

  /** Open /ws, /stream.mjpg and /events connections. */
  get clientCount(): number {
    return this.streams.size;
  }

  /** Every open streaming connection with its counters. */
  get clients(): ClientInfo[] {
    return [...this.streams].map((stream) => stream.info());
  }

  /**
   * Every frame the receiver got and checked, before decoding. A JPEG frame of the stream itself
   * (rung 0) is kept, to be forwarded byte for byte when its decoded image is published, and is
   * at once the latest snapshot. An H.264 frame of the stream itself is forwarded at once to the
   * tabs that decode H.264 (every access unit: a picture needs the ones before it).
   */
  received(frame: ReceivedFrame, payload: Buffer): void {
    if (this.closing) return;
    this.noteFrame(frame);
    if ((frame.encoding === 'h264') !== this.h264Stream) {
      this.h264Stream = frame.encoding === 'h264';
      this.h264Chain = undefined;
      this.ladderChanged();
    }
    if (frame.encoding === 'h264') return this.forwardH264(frame, payload);
    if (frame.encoding !== 'jpeg' || (frame.rung ?? 0) !== 0) return;
    const newest = [...this.jpegPayloads.keys()].at(-1);
    if (newest !== undefined && frame.seq <= newest) this.jpegPayloads.clear(); // a new stream
    this.jpegPayloads.set(frame.seq, { payload, width: frame.width, height: frame.height });
    for (const seq of this.jpegPayloads.keys()) {
      if (this.jpegPayloads.size <= MAX_KEPT_PAYLOADS) break;
      this.jpegPayloads.delete(seq);
    }
    this.latestTop = { seq: frame.seq, captureTime: frame.captureTime, rung: 0, width: frame.width, height: frame.height, payload };
  }

  /**
   * FrameSink: the decoded image of a frame, published to every connection on the rung each
   * needs. Resolves once the server no longer reads the image (every rung in use encoded). A call
   * while the previous image is still being encoded is skipped (counted): the receiver's own
   * pipeline keeps only the newest image meanwhile. `meta` is optional: without it, images are
   * numbered here and stamped with the time of this call.
   */
  async write(image: RawImage, meta?: FrameMeta): Promise<void> {
    if (this.closing) return;
    if (this.publishing) {
      this.imagesSkipped++;
      return;
    }
    const seq = meta?.seq ?? this.unnumbered++;
    const captureTime = meta?.captureTime ?? performance.timeOrigin + performance.now();
    let restarted = false;
    if (this.lastPublishedSeq !== undefined && seq <= this.lastPublishedSeq) {
      if (seq === this.lastPublishedSeq) return; // already published
      this.streamRestarted(seq);
      restarted = true;
    }
    this.lastPublishedSeq = seq;
    // received() saw this frame first, unless the caller only writes images.
    const latest = this.latestFrame?.info.seq;
    if (restarted || latest === undefined || seq > latest) this.noteFrame({ seq, captureTime, width: image.width, height: image.height });
    const received = this.jpegPayloads.get(seq);
    for (const kept of this.jpegPayloads.keys()) if (kept <= seq) this.jpegPayloads.delete(kept);
    // The received JPEG is rung 0 only if it has the decoded image's size (not a sender's lower rung).
    const top = received && received.width === image.width && received.height === image.height ? received.payload : undefined;
    const fanOut = this.fanOutFor(image.width, image.height);
    this.publishing = true;
    try {
      const published = await fanOut.publish({ image, seq, captureTime, ...(top ? { encodedTop: top } : {}) });
      const rung0 = published.frames.get(0);
      if (rung0 && !this.closing && (this.latestTop === undefined || rung0.seq >= this.latestTop.seq)) this.latestTop = rung0;
    } catch (err) {
      this.log(`browser server: encoding frame ${seq} failed: ${(err as Error)?.message ?? String(err)}`);
    } finally {
      this.publishing = false;
    }
  }

  /**
   * An H.264 access unit of the stream itself, as received, to the tabs on rung 0: byte for byte,
   * through a fan-out of its own that starts each tab at a keyframe (a tab that joins gets the
   * access units since the last one) and skips a tab that fell behind to the next keyframe. A
   * frame of one of the sender's lower rungs is not forwarded: the tabs get JPEG meanwhile, and
   * H.264 again from the next keyframe of the stream itself.
   */
  private forwardH264(frame: ReceivedFrame, payload: Buffer): void {
    if ((frame.rung ?? 0) !== 0) {
      this.h264Chain = undefined;
      return;
    }
    const fanOut = this.h264FanOutFor(frame.width, frame.height);
    const previous = this.h264Chain;
    const keyframe = frame.keyframe === true;
    // A new sequence when the chain broke (a restart, frames of another rung in between); it starts at a keyframe.
    const continues = previous !== undefined && frame.seq > previous.seq;
    if (!continues) this.h264Sequence++;
    const link: ChainLink = { rung: 0, sequence: this.h264Sequence, index: continues ? previous.link.index + 1 : 0, keyframe };
    this.h264Chain = { seq: frame.seq, link };
    const placeholder: RawImage = { width: frame.width, height: frame.height, channels: 3, data: Buffer.alloc(0) };
    fanOut.publish({ image: placeholder, seq: frame.seq, captureTime: frame.captureTime, encodedTop: payload, topChain: link }).catch((err: Error) => {
      this.log(`browser server: forwarding H.264 frame ${frame.seq} failed: ${err.message}`);
    });
  }

  /** The fan-out of the stream's own H.264, for pictures of this size (one rung: the access units as received). */
  private h264FanOutFor(width: number, height: number): FanOut<ServedFrame> {
    const key = `${width}x${height}`;
    if (this.h264 && this.h264.key === key) return this.h264.fanOut;
    this.h264?.fanOut.clearKept();
    const fanOut = new FanOut<ServedFrame>({
      // Never encodes: every publish hands rung 0 in, already encoded.
      encoder: new RungEncoder(this.options.codec, 'jpeg', [{ width, height }]),
      interCoded: true,
      prepare: (encoded, published) => ({
        seq: published.seq,
        captureTime: published.captureTime,
        rung: 0,
        width: encoded.width,
        height: encoded.height,
        payload: encoded.payload,
        codec: 'h264',
        keyframe: encoded.chain?.keyframe === true,
      }),
      fps: 0, // measured from the frames forwarded
    });
    this.h264 = { fanOut, key };
    for (const tab of this.tabs) if (tab.acceptsH264) fanOut.add(tab.h264Outlet);
    return fanOut;
  }

  /** The stream's codec or size changed: every tab chooses again from the best rung it can take. */
  private ladderChanged(): void {
    for (const tab of this.tabs) tab.setLadder(this.tabLadder());
  }

  /** The ladder a tab chooses from: the JPEG rungs, under the stream's own H.264 when it is one. */
  private tabLadder() {
    const jpegRungs = Math.max(1, this.ladder.length);
    if (!this.h264Stream) return { rungs: jpegRungs };
    return { rungs: jpegRungs + 1, h264: true, rungBitrate: (rung: number) => (rung === 0 ? (this.h264?.fanOut.rungBitrate(0) ?? 0) : this.jpegRungBitrate(rung - 1)) };
  }

  /** A JPEG rung's bytes per second: measured, or (before any JPEG was encoded) guessed from the picture size. */
  private jpegRungBitrate(rung: number): number {
    const fanOut = this.fanOut;
    const spec = this.ladder[rung];
    if (!fanOut || !spec) return Infinity;
    if (fanOut.expectedFrameBytes(rung) > 0) return fanOut.rungBitrate(rung);
    const top = this.ladder[0]!;
    const fps = this.h264?.fanOut.fps || 30;
    return top.width * top.height * 3 * JPEG_SHARE_OF_RAW * relativeRungSize(spec, top) * fps;
  }

  /** Latest receiver figures: kept for /stats.json and sent to every page as a `stats` event. */
  publishStats(stats: ReceiverFigures): void {
    if (this.closing) return;
    this.latestStats = stats;
    for (const stream of this.streams) if (stream instanceof EventStream) stream.send('stats', this.eventData(stream.id));
  }

  /** Ends every connection, closes the server. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    clearInterval(this.ticker);
    this.jpegPayloads.clear();
    this.h264?.fanOut.clearKept();
    for (const done of this.snapshotWaiters) done(undefined);
    const streams = [...this.streams];
    const allEnded = Promise.all(streams.map((stream) => stream.end()));
    const server = this.server;
    const serverClosed = new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server?.closeIdleConnections();
    // Clients that read get their final bytes; clients that do not are cut after the grace.
    let graceTimer: NodeJS.Timeout | undefined;
    await Promise.race([allEnded, new Promise<void>((resolve) => (graceTimer = setTimeout(resolve, CLOSE_GRACE_MS)))]);
    clearTimeout(graceTimer);
    for (const tab of this.tabs) tab.terminate();
    server?.closeAllConnections();
    await serverClosed;
    this.wss.close();
  }

  /** The figures /stats.json shows: the receiver's, the server's status, every streaming connection. */
  snapshot(): { stats: ReceiverFigures | null; server: ServerStatus; clients: ClientInfo[] } {
    return { stats: this.latestStats, server: this.status(undefined), clients: this.clients };
  }

  /** Answers one HTTP request (its own server's, or one a BrowserHub routed here). */
  handleRequest(req: IncomingMessage, res: ServerResponse): void {
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    for (const [name, value] of Object.entries(COMMON_HEADERS)) res.setHeader(name, value);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return sendText(res, 405, `method ${req.method ?? '?'} not allowed: this server only answers GET and HEAD\n`);
    }
    if (this.closing) return sendText(res, 503, 'the browser server is shutting down\n');
    const url = new URL(req.url ?? '/', 'http://browser');
    const id = clientIdOf(url);
    const head = req.method === 'HEAD';
    const asset = this.page.assets.get(url.pathname);
    if (asset) return sendBody(res, 200, asset.contentType, asset.body);
    switch (url.pathname) {
      case '/':
      case '/index.html':
        res.setHeader('Content-Security-Policy', PAGE_CSP);
        res.setHeader('Referrer-Policy', 'no-referrer');
        return sendBody(res, 200, 'text/html; charset=utf-8', this.page.index(this.options.title));
      case '/stream.mjpg':
        return this.serveMjpeg(req, res, id, head);
      case '/snapshot.jpg':
        return void this.serveSnapshot(res);
      case '/stats.json':
        return sendBody(res, 200, 'application/json; charset=utf-8', JSON.stringify(this.snapshot()));
      case '/events':
        return this.serveEvents(req, res, id, head);
      case '/ws':
        return sendText(res, 426, 'this is the WebSocket endpoint: connect with a WebSocket client (the page does)\n');
      default:
        return sendText(res, 404, `not found: ${url.pathname} (try /, /ws, /stream.mjpg, /snapshot.jpg, /stats.json or /events)\n`);
    }
  }

  /** WebSocket handshakes: only at /ws, only from this server's own pages (or from non-browser clients). */
  handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => undefined);
    const url = new URL(req.url ?? '/', 'http://browser');
    const refuse = (status: number, reason: string, text: string) => {
      socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`);
    };
    if (url.pathname !== '/ws') return refuse(404, 'Not Found', `no WebSocket at ${url.pathname}: use /ws\n`);
    if (this.closing) return refuse(503, 'Service Unavailable', 'the browser server is shutting down\n');
    // A page from another site must not read the video: browsers send Origin, and it must be us.
    const origin = req.headers.origin;
    if (origin !== undefined && !sameHost(origin, req.headers.host)) {
      return refuse(403, 'Forbidden', `WebSocket from origin ${origin} refused: only pages served by this server may connect\n`);
    }
    if (this.streams.size >= this.maxClients) {
      return refuse(503, 'Service Unavailable', `too many viewers: ${this.streams.size} streaming connections are open (the limit is ${this.maxClients}); try again later\n`);
    }
    // ws completes the handshake synchronously (no verifyClient, no extensions): the tab counts at once.
    // `codecs`: what the page decodes (viewer.js sends h264,jpeg when it has WebCodecs); without it, JPEG only.
    const acceptsH264 = (url.searchParams.get('codecs') ?? '').split(',').includes('h264');
    this.wss.handleUpgrade(req, socket, head, (ws: WebSocket) => this.addTab(ws, clientIdOf(url), remoteOf(req), acceptsH264));
  }

  private addTab(ws: WebSocket, id: string | undefined, remote: string, acceptsH264: boolean): void {
    if (this.closing) return void ws.terminate();
    const tab = new TabSocket(ws, id, remote, {
      ...this.tabLadder(),
      acceptsH264,
      adapt: this.options.adapt ?? true,
      log: this.log,
      ...(this.options.flow ? { flow: this.options.flow } : {}),
    });
    this.tabs.add(tab);
    this.addStream(tab);
    this.addOutlet(tab);
    if (acceptsH264) this.h264?.fanOut.add(tab.h264Outlet);
    ws.on('close', () => {
      this.tabs.delete(tab);
      this.streams.delete(tab);
      this.removeOutlet(tab);
      this.h264?.fanOut.delete(tab.h264Outlet);
      const { sent, dropped } = tab.info();
      this.log(`browser server: tab ${remote} left after ${sent} frames (${dropped} skipped for it); ${this.streams.size} connections open`);
    });
    this.log(`browser server: tab ${remote} connected (${acceptsH264 ? 'decodes H.264 and JPEG' : 'JPEG only'}); ${this.streams.size} connections open`);
    // The newest frame at once, rather than after the next one arrives (an H.264 tab gets the access units since the last keyframe instead).
    if (this.latestTop && !(this.h264Stream && acceptsH264)) tab.offer({ frame: this.latestTop, settle: () => undefined });
  }

  /** Refuses a streaming connection beyond maxClients; true when refused. */
  private refuseIfFull(res: ServerResponse): boolean {
    if (this.streams.size < this.maxClients) return false;
    res.setHeader('Retry-After', '5');
    sendText(res, 503, `too many viewers: ${this.streams.size} streaming connections are open (the limit is ${this.maxClients}); try again later\n`);
    return true;
  }

  private serveMjpeg(req: IncomingMessage, res: ServerResponse, id: string | undefined, head: boolean): void {
    if (this.refuseIfFull(res)) return;
    res.writeHead(200, {
      'Content-Type': `multipart/x-mixed-replace; boundary=${MJPEG_BOUNDARY}`,
      Pragma: 'no-cache',
      'X-Accel-Buffering': 'no',
    });
    if (head) return void res.end();
    // Send the headers now: a player shows "connected" before the first frame exists.
    res.flushHeaders();
    req.socket.setNoDelay(true);
    const stream = new MjpegStream(res, id, remoteOf(req));
    this.addStream(stream);
    this.addOutlet(stream);
    res.on('close', () => {
      this.streams.delete(stream);
      this.removeOutlet(stream);
      const { sent, dropped } = stream.info();
      this.log(`browser server: ${stream.remote} left /stream.mjpg after ${sent} frames (${dropped} skipped for it); ${this.streams.size} connections open`);
    });
    this.log(`browser server: ${stream.remote} opened /stream.mjpg; ${this.streams.size} connections open`);
    if (this.latestTop) stream.offerFrame(this.latestTop);
  }

  private serveEvents(req: IncomingMessage, res: ServerResponse, id: string | undefined, head: boolean): void {
    if (this.refuseIfFull(res)) return;
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'X-Accel-Buffering': 'no' });
    if (head) return void res.end();
    req.socket.setNoDelay(true);
    const stream = new EventStream(res, id, remoteOf(req));
    this.addStream(stream);
    res.on('close', () => this.streams.delete(stream));
    // The page shows the latest figures at once instead of after the next second.
    stream.send(this.latestStats ? 'stats' : 'status', this.eventData(id));
  }

  private async serveSnapshot(res: ServerResponse): Promise<void> {
    let frame = this.latestTop;
    // The newest frame has no JPEG yet (a raw stream nobody watches): encode the next one.
    if (this.latestFrame !== undefined && (frame === undefined || frame.seq < this.latestFrame.info.seq)) {
      frame = (await this.nextTopFrame(SNAPSHOT_WAIT_MS)) ?? this.latestTop;
    }
    if (!frame) return sendText(res, 503, 'no frame yet: the receiver has not received a picture from the stream\n');
    res.writeHead(200, {
      'Content-Type': 'image/jpeg',
      'Content-Length': frame.payload.length,
      'X-Frame-Seq': String(frame.seq),
      'X-Capture-Time': String(frame.captureTime),
    });
    res.end(frame.payload);
  }

  /** The next rung-0 frame published, or undefined after `timeoutMs` (or on close). */
  private nextTopFrame(timeoutMs: number): Promise<ServedFrame | undefined> {
    return new Promise((resolve) => {
      const done = (frame: ServedFrame | undefined) => {
        clearTimeout(timer);
        this.snapshotWaiters.delete(done);
        this.removeOutlet(outlet);
        resolve(frame);
      };
      const outlet: Outlet<ServedFrame> = {
        chooseRung: () => 0,
        offer: (delivery) => {
          delivery.settle(true);
          done(delivery.frame);
        },
      };
      const timer = setTimeout(() => done(undefined), timeoutMs);
      this.snapshotWaiters.add(done);
      this.addOutlet(outlet);
    });
  }

  private addStream(stream: OutboundStream): void {
    this.streams.add(stream);
  }

  private addOutlet(outlet: Outlet<ServedFrame>): void {
    this.outlets.add(outlet);
    this.fanOut?.add(outlet);
  }

  private removeOutlet(outlet: Outlet<ServedFrame>): void {
    this.outlets.delete(outlet);
    this.fanOut?.delete(outlet);
  }

  /** The fan-out for images of this size: a new ladder (and rung 0 for every tab) when the size changes. */
  private fanOutFor(width: number, height: number): FanOut<ServedFrame> {
    const key = `${width}x${height}`;
    if (this.fanOut && this.ladderKey === key) return this.fanOut;
    const ladder = rungLadder('jpeg', width, height, this.jpegQuality);
    this.fanOut = new FanOut<ServedFrame>({
      encoder: new RungEncoder(this.options.codec, 'jpeg', ladder),
      prepare: (encoded, published) => ({
        seq: published.seq,
        captureTime: published.captureTime,
        rung: encoded.rung,
        width: encoded.width,
        height: encoded.height,
        payload: encoded.payload,
      }),
      fps: 0, // measured from the frames published
    });
    this.ladderKey = key;
    this.ladder = ladder;
    this.ladderChanged();
    for (const outlet of this.outlets) this.fanOut.add(outlet);
    return this.fanOut;
  }

  /** Frame numbers began again (the sender restarted): every tab's flow state refers to the old ones. */
  private streamRestarted(seq: number): void {
    this.log(`browser server: the stream restarted (frame ${seq} after ${this.lastPublishedSeq}): tabs reconnect`);
    this.latestTop = undefined;
    this.h264?.fanOut.clearKept();
    for (const tab of this.tabs) tab.close(CLOSE_STREAM_RESTARTED, 'the stream restarted');
    for (const stream of this.streams) if (stream instanceof MjpegStream) stream.streamRestarted();
  }

  /** The newest frame the server knows of, for the status. */
  private noteFrame(frame: FrameInfo): void {
    this.latestFrame = {
      info: { seq: frame.seq, captureTime: frame.captureTime, width: frame.width, height: frame.height },
      at: performance.now(),
    };
  }

  private eventData(clientId: string | undefined): { stats: ReceiverFigures | null; server: ServerStatus } {
    return { stats: this.latestStats, server: this.status(clientId) };
  }

  private status(clientId: string | undefined): ServerStatus {
    const latest = this.latestFrame;
    let tabs = 0;
    let mjpeg = 0;
    let pages = 0;
    let you: ServerStatus['you'];
    for (const stream of this.streams) {
      if (stream instanceof TabSocket) tabs++;
      else if (stream instanceof MjpegStream) mjpeg++;
      else pages++;
      // The tab's own video connection (the newest, should it have reconnected).
      if (clientId !== undefined && stream.id === clientId && stream.kind !== 'events') {
        const info = stream.info();
        you = { dropped: info.dropped, sent: info.sent, ...(info.tab ? { rung: info.tab.rung } : {}) };
      }
    }
    return {
      title: this.options.title,
      tabs,
      mjpeg,
      pages,
      frame: latest ? { ...latest.info } : null,
      frameAgeMs: latest ? Math.round(performance.now() - latest.at) : null,
      imagesSkipped: this.imagesSkipped,
      ...(you ? { you } : {}),
    };
  }

  /** The one stall check for every kind of connection, and the status for every page. */
  private tick(): void {
    const now = performance.now();
    for (const stream of this.streams) {
      const stalledMs = stream.stalledForMs(now);
      if (stalledMs > this.stalledClientTimeoutMs) {
        const what = stream.kind === 'tab' ? 'has taken or acknowledged nothing' : 'has read nothing';
        const reason = `${what} for ${Math.round(stalledMs / 1000)} s`;
        this.log(`browser server: ${stream.kind} ${stream.remote} ${reason}: disconnecting it`);
        stream.cut();
      }
    }
    for (const stream of this.streams) if (stream instanceof EventStream) stream.send('status', this.eventData(stream.id));
  }
}

function checkOptions(options: BrowserServerOptions): void {
  const maxClients = options.maxClients ?? DEFAULT_MAX_CLIENTS;
  if (!Number.isInteger(maxClients) || maxClients < 1) throw new RangeError(`maxClients must be a positive integer, got ${maxClients}`);
  const quality = options.jpegQuality ?? DEFAULT_JPEG_QUALITY;
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) throw new RangeError(`jpegQuality must be an integer in 1..100, got ${quality}`);
}

function clientIdOf(url: URL): string | undefined {
  const id = url.searchParams.get('client') ?? undefined;
  return id !== undefined && CLIENT_ID_PATTERN.test(id) ? id : undefined;
}

function sameHost(origin: string, host: string | undefined): boolean {
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
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

function listenError(host: string, port: number, err: NodeJS.ErrnoException): Error {
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const reason =
    err.code === 'EADDRINUSE' ? 'the port is already in use (choose another port, or 0 for a free one)'
      : err.code === 'EACCES' ? 'permission denied (ports below 1024 need privileges)'
        : err.code === 'EADDRNOTAVAIL' ? 'that address does not belong to this machine'
          : err.message;
  const error = new Error(`cannot start the browser server on ${where}: ${reason}`, { cause: err }) as NodeJS.ErrnoException;
  if (err.code !== undefined) error.code = err.code;
  return error;
}
