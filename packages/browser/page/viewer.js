// @ts-check
/**
 * camstream's browser viewer (served as is by @camstream/browser; type-checked by page/tsconfig.json).
 *
 * Pictures: a WebSocket at /ws. Each frame arrives as binary messages of at most 16 KiB, the first
 * starting with a 32-byte header (WEBSOCKET.md). The page times the frame's arrival (first message
 * to last), decodes it with createImageBitmap, draws it on the canvas and only then acknowledges it
 * with {type:'ack', seq, spanMs, spanBytes}: the server keeps the bytes in flight to this tab under
 * a window sized from those figures, and lowers the quality rung when the link is slow. While one
 * frame decodes, only the newest waiting frame is kept (latest-wins). If WebSocket connections keep
 * failing while the server answers, the page falls back to /stream.mjpg in an <img>.
 *
 * Figures: an EventSource on /events: `stats` (the receiver's figures) and `status` (the server's:
 * viewers, the newest frame's age), each carrying both.
 */

const STALL_AFTER_MS = 2000;
const FRAME_VERSION = 1;
const HEADER_BYTES = 32;
const MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;
/** This tab's latency figures cover this long... */
const LATENCY_SHOWN_MS = 5000;
/** ...and this much is kept (benchmarks read it through window.camstreamViewer). */
const LATENCY_KEPT_MS = 10000;
/** WebSocket connections that end without a single frame before the page falls back to MJPEG. */
const FAILURES_BEFORE_MJPEG = 3;
/** Close code the page uses when a frame is malformed (4000-4999: for applications). */
const CLOSE_BAD_FRAME = 4000;
/** Close code of the server when the stream restarted: reconnect at once. */
const CLOSE_STREAM_RESTARTED = 1012;

/**
 * @typedef {object} FrameHeader
 * @property {number} seq
 * @property {number} captureTime wall clock, ms since the Unix epoch
 * @property {number} width
 * @property {number} height
 * @property {number} rung 0: the stream itself
 * @property {number} dropped frames the server skipped for this connection so far
 * @property {number} payloadBytes
 */

/**
 * @typedef {object} ArrivedFrame
 * @property {FrameHeader} header
 * @property {Blob} jpeg
 * @property {number} spanMs first message to last, as they arrived here
 * @property {number} spanBytes bytes of the messages after the first
 * @property {number} arrivedAt performance.now() when its last message arrived
 * @property {(message: string) => void} reply sends on the connection the frame came by
 */

/**
 * @typedef {object} ReceiverFigures
 * @property {number} fps
 * @property {number} decodedFps
 * @property {number} mbps
 * @property {{ p50: number, p95: number, p99: number } | null} latencyMs
 * @property {number} frames
 * @property {number} senderDropped
 * @property {number} skipped
 * @property {number} gaps
 * @property {number} corrupt
 */

/**
 * @typedef {object} ServerStatus
 * @property {number} tabs
 * @property {number} mjpeg
 * @property {{ seq: number, captureTime: number, width: number, height: number } | null} frame
 * @property {number | null} frameAgeMs
 */

/** @param {string} id */
function element(id) {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found;
}

const clientId = Math.random().toString(36).slice(2, 10) + Date.now().toString(36);
/** @type {HTMLCanvasElement | HTMLImageElement} */
let video = /** @type {HTMLCanvasElement} */ (element('video'));
const canvas = video;
const context = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
const overlay = element('overlay');
const badge = element('state');

const tab = {
  /** @type {number[]} performance.now() of each frame drawn in the last second */
  shownAt: [],
  /** @type {Array<{ at: number, ms: number, seq: number, rung: number, drawMs: number }>} capture -> display latency of each frame drawn, and how much of it was arrival -> display */
  latencies: [],
  lastShownAt: 0,
  /** @type {number | null} */
  lastSeq: null,
  shown: 0,
  /** frames replaced while another one decoded */
  skipped: 0,
  decodeErrors: 0,
  acks: 0,
  /** @type {number | null} */
  rung: null,
  /** frames the server skipped for this tab, over every connection so far */
  serverSkipped: 0,
  /** @type {'websocket' | 'mjpeg'} */
  transport: 'websocket',
  /** set once the canvas has the stream's own size */
  sized: false,
};
const links = { video: false, events: false, videoError: '', failures: 0 };
/** @type {{ status: ServerStatus | null, receivedAt: number }} */
const server = { status: null, receivedAt: 0 };

/** @param {number} sinceMs */
function latenciesSince(sinceMs) {
  const from = performance.now() - sinceMs;
  return tab.latencies.filter((entry) => entry.at >= from).map((entry) => entry.ms);
}
// Tests and benchmarks read the tab's own figures here.
Object.assign(window, { camstreamViewer: { clientId, tab, links, latenciesSince } });

/**
 * @param {string} id
 * @param {string} text
 * @param {boolean} [alarm]
 */
function setText(id, text, alarm) {
  const target = document.getElementById(id);
  if (!target) return;
  if (target.textContent !== text) target.textContent = text;
  if (alarm !== undefined) target.classList.toggle('alarm', alarm);
}

/**
 * @param {unknown} value
 * @param {number} digits
 */
function num(value, digits) {
  return typeof value === 'number' && Number.isFinite(value) ? value.toFixed(digits) : '–';
}

/**
 * @param {number[]} values
 * @param {number} p
 */
function percentile(values, p) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? null;
}

function wallClockMs() {
  return performance.timeOrigin + performance.now();
}

// ---- frames: reassembled from the WebSocket's messages ----

/**
 * @param {ArrayBuffer} data the first message of a frame
 * @returns {{ header: FrameHeader, headerBytes: number }}
 */
function readHeader(data) {
  if (data.byteLength < HEADER_BYTES) throw new Error(`a frame's first message has ${data.byteLength} bytes, less than its header`);
  const view = new DataView(data);
  const version = view.getUint8(0);
  if (version !== FRAME_VERSION) throw new Error(`frame header version ${version}, this page reads ${FRAME_VERSION}`);
  const headerBytes = view.getUint16(2);
  if (headerBytes < HEADER_BYTES || headerBytes > data.byteLength) throw new Error(`a frame header of ${headerBytes} bytes`);
  const header = {
    rung: view.getUint8(1),
    payloadBytes: view.getUint32(4),
    seq: view.getFloat64(8),
    captureTime: view.getFloat64(16),
    dropped: view.getUint32(24),
    width: view.getUint16(28),
    height: view.getUint16(30),
  };
  if (header.payloadBytes > MAX_PAYLOAD_BYTES) throw new Error(`a frame of ${header.payloadBytes} bytes`);
  return { header, headerBytes };
}

/** Collects one frame's messages into one buffer (reused: the Blob made of it is a copy). */
class FrameAssembler {
  constructor() {
    /** @type {FrameHeader | null} */
    this.header = null;
    this.buffer = new Uint8Array(256 * 1024);
    this.filled = 0;
    this.firstAt = 0;
    this.spanBytes = 0;
  }

  /**
   * @param {ArrayBuffer} data one binary message
   * @param {number} now performance.now() when it arrived
   * @returns {{ header: FrameHeader, jpeg: Blob, spanMs: number, spanBytes: number, arrivedAt: number } | null} the frame once complete
   */
  push(data, now) {
    let bytes = new Uint8Array(data);
    if (this.header === null) {
      const { header, headerBytes } = readHeader(data);
      this.header = header;
      if (this.buffer.length < header.payloadBytes) this.buffer = new Uint8Array(Math.max(header.payloadBytes, this.buffer.length * 2));
      this.filled = 0;
      this.firstAt = now;
      this.spanBytes = 0;
      bytes = bytes.subarray(headerBytes);
    } else {
      this.spanBytes += data.byteLength;
    }
    const header = this.header;
    if (this.filled + bytes.length > header.payloadBytes) {
      throw new Error(`frame ${header.seq} got ${this.filled + bytes.length} bytes, its header said ${header.payloadBytes}`);
    }
    this.buffer.set(bytes, this.filled);
    this.filled += bytes.length;
    if (this.filled < header.payloadBytes) return null;
    this.header = null;
    const jpeg = new Blob([this.buffer.subarray(0, this.filled)], { type: 'image/jpeg' });
    return { header, jpeg, spanMs: now - this.firstAt, spanBytes: this.spanBytes, arrivedAt: now };
  }
}

// ---- drawing: one frame at a time, the newest waiting one next ----

let drawing = false;
/** @type {ArrivedFrame | null} */
let waiting = null;

/** @param {ArrivedFrame} frame */
function offer(frame) {
  if (drawing) {
    if (waiting) tab.skipped++;
    waiting = frame;
    return;
  }
  void draw(frame);
}

/** @param {ArrivedFrame} frame */
async function draw(frame) {
  drawing = true;
  /** @type {ArrivedFrame | null} */
  let next = frame;
  while (next) {
    const current = next;
    try {
      await show(current);
    } catch {
      tab.decodeErrors++;
    }
    // Drawn (or undecodable: it still arrived): the server may send more.
    current.reply(JSON.stringify({ type: 'ack', seq: current.header.seq, spanMs: Math.round(current.spanMs * 100) / 100, spanBytes: current.spanBytes }));
    tab.acks++;
    next = waiting;
    waiting = null;
  }
  drawing = false;
}

/** @param {ArrivedFrame} frame */
async function show(frame) {
  const bitmap = await createImageBitmap(frame.jpeg);
  const { header } = frame;
  // The canvas keeps the stream's own size; lower rungs are scaled up to it.
  if (header.rung === 0 || !tab.sized) {
    if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
      canvas.width = bitmap.width;
      canvas.height = bitmap.height;
    }
    tab.sized = header.rung === 0;
  }
  context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  const now = performance.now();
  tab.shown++;
  tab.lastShownAt = now;
  tab.lastSeq = header.seq;
  tab.rung = header.rung;
  tab.shownAt.push(now);
  tab.latencies.push({ at: now, ms: wallClockMs() - header.captureTime, seq: header.seq, rung: header.rung, drawMs: now - frame.arrivedAt });
  canvas.dataset['seq'] = String(header.seq);
  canvas.dataset['shown'] = String(tab.shown);
  // Lift the "waiting"/"stalled" overlay at once rather than at the next tick.
  if (overlay.classList.contains('shown')) update();
}

// ---- the WebSocket, reconnected with backoff ----

let reconnectDelayMs = 500;

function connectVideo() {
  const url = new URL('ws', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  url.searchParams.set('client', clientId);
  const socket = new WebSocket(url);
  socket.binaryType = 'arraybuffer';
  const assembler = new FrameAssembler();
  const skippedBefore = tab.serverSkipped;
  let frames = 0;
  /** @param {string} message */
  const reply = (message) => {
    if (socket.readyState === WebSocket.OPEN) socket.send(message);
  };
  socket.onopen = () => {
    links.video = true;
    links.videoError = '';
  };
  socket.onmessage = (event) => {
    const now = performance.now();
    if (!(event.data instanceof ArrayBuffer)) return;
    try {
      const arrived = assembler.push(event.data, now);
      if (arrived === null) return;
      frames++;
      links.failures = 0;
      reconnectDelayMs = 500;
      tab.serverSkipped = skippedBefore + arrived.header.dropped;
      offer({ ...arrived, reply });
    } catch (err) {
      links.videoError = String(err instanceof Error ? err.message : err);
      socket.close(CLOSE_BAD_FRAME, 'malformed frame');
    }
  };
  socket.onclose = (event) => {
    links.video = false;
    if (event.reason) links.videoError = event.reason;
    else if (!links.videoError) links.videoError = `WebSocket closed (${event.code})`;
    if (frames === 0) links.failures++;
    // A server that answers while its WebSocket never delivers (a proxy that does not pass
    // WebSockets, say): show the MJPEG stream instead, without this tab's own figures.
    if (links.failures >= FAILURES_BEFORE_MJPEG && links.events) {
      fallBackToMjpeg();
      return;
    }
    const delay = event.code === CLOSE_STREAM_RESTARTED ? 0 : reconnectDelayMs;
    reconnectDelayMs = Math.min(reconnectDelayMs * 2, 5000);
    setTimeout(connectVideo, delay);
  };
}

function fallBackToMjpeg() {
  const img = document.createElement('img');
  img.src = `stream.mjpg?client=${encodeURIComponent(clientId)}`;
  img.alt = canvas.getAttribute('aria-label') ?? 'live video';
  img.id = 'video';
  canvas.replaceWith(img);
  video = img;
  tab.transport = 'mjpeg';
  links.video = true;
  update();
}

// ---- figures: Server-Sent Events ----

/** @param {ReceiverFigures | null} stats */
function showStats(stats) {
  if (!stats) return;
  setText('stat-fps', num(stats.fps, 1));
  setText('stat-decoded-fps', num(stats.decodedFps, 1));
  setText('stat-mbps', num(stats.mbps, 2));
  setText('stat-frames', String(stats.frames));
  const latency = stats.latencyMs;
  setText('stat-p50', latency ? num(latency.p50, 1) : '–');
  setText('stat-p95', latency ? num(latency.p95, 1) : '–');
  setText('stat-p99', latency ? num(latency.p99, 1) : '–');
  setText('stat-dropped', String(stats.senderDropped));
  setText('stat-skipped', String(stats.skipped));
  setText('stat-gaps', String(stats.gaps), stats.gaps > 0);
  setText('stat-corrupt', String(stats.corrupt), stats.corrupt > 0);
}

/** @param {ServerStatus | null} status */
function showStatus(status) {
  if (!status) return;
  server.status = status;
  server.receivedAt = performance.now();
  setText('stat-viewers', String(status.tabs + status.mjpeg));
  if (status.frame) {
    setText('stat-resolution', `${status.frame.width}×${status.frame.height}`);
    setText('stat-seq', String(status.frame.seq));
  }
}

function listenForEvents() {
  const events = new EventSource(`events?client=${encodeURIComponent(clientId)}`);
  events.onopen = () => {
    links.events = true;
  };
  events.onerror = () => {
    links.events = false;
    // EventSource gives up for good on an HTTP error (503 when the server is full): retry later.
    if (events.readyState === EventSource.CLOSED) setTimeout(listenForEvents, 5000);
  };
  /** @param {MessageEvent<string>} event */
  const onFigures = (event) => {
    const message = /** @type {{ stats: ReceiverFigures | null, server: ServerStatus }} */ (JSON.parse(event.data));
    showStats(message.stats);
    showStatus(message.server);
  };
  events.addEventListener('stats', onFigures);
  events.addEventListener('status', onFigures);
}

// ---- twice a second: this tab's figures and the connection state ----

function serverFrameAgeMs() {
  const status = server.status;
  if (!status || status.frameAgeMs === null) return null;
  return status.frameAgeMs + (performance.now() - server.receivedAt);
}

function update() {
  const now = performance.now();
  while (tab.shownAt.length > 0 && (tab.shownAt[0] ?? now) < now - 1000) tab.shownAt.shift();
  while (tab.latencies.length > 0 && (tab.latencies[0]?.at ?? now) < now - LATENCY_KEPT_MS) tab.latencies.shift();
  const latencies = latenciesSince(LATENCY_SHOWN_MS);
  const byWebSocket = tab.transport === 'websocket';
  setText('tab-fps', byWebSocket ? String(tab.shownAt.length) : '–');
  setText('tab-p50', num(percentile(latencies, 50), 0));
  setText('tab-p95', num(percentile(latencies, 95), 0));
  setText('tab-p99', num(percentile(latencies, 99), 0));
  setText('tab-rung', tab.rung === null ? '–' : tab.rung === 0 ? '0 (full quality)' : String(tab.rung));
  setText('tab-server-skipped', byWebSocket ? String(tab.serverSkipped) : '–');
  setText('tab-skipped', String(tab.skipped));
  setText('tab-transport', byWebSocket ? 'WebSocket' : 'MJPEG (no latency bound)');

  const serverAge = serverFrameAgeMs();
  // Frames shown in an <img> cannot be counted: there the server's newest frame tells.
  const sinceShown = byWebSocket ? (tab.shown ? now - tab.lastShownAt : Infinity) : serverAge ?? Infinity;
  let state = 'live';
  let message = '';
  if (sinceShown > STALL_AFTER_MS) {
    state = 'stalled';
    if (!links.video && !links.events) {
      message = `Viewer server unreachable${links.videoError ? ` (${links.videoError})` : ''}: retrying…`;
    } else if (!links.video && links.videoError) {
      message = `Video unavailable: ${links.videoError}: retrying…`;
    } else if (server.status && !server.status.frame) {
      message = 'Stream not connected: no frame received yet';
      state = 'waiting';
    } else if (serverAge !== null && serverAge > STALL_AFTER_MS) {
      message = `Stream stalled: no frame from the stream for ${(serverAge / 1000).toFixed(1)} s`;
    } else if (tab.shown) {
      message = `No new frame shown for ${(sinceShown / 1000).toFixed(1)} s`;
    } else {
      message = 'Waiting for the first frame…';
      state = 'waiting';
    }
  }
  badge.className = `badge ${state}`;
  badge.textContent = state === 'live' ? 'LIVE' : state === 'waiting' ? 'NOT CONNECTED' : 'STALLED';
  overlay.textContent = message;
  overlay.classList.toggle('shown', state !== 'live');
  video.classList.toggle('stale', state !== 'live' && (tab.shown > 0 || !byWebSocket));
}

listenForEvents();
if (typeof WebSocket === 'function' && typeof createImageBitmap === 'function') connectVideo();
else fallBackToMjpeg();
update();
setInterval(update, 500);
