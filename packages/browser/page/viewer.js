// @ts-check
/**
 * camstream's browser viewer (served as is by @camstream/browser; type-checked by page/tsconfig.json).
 *
 * Pictures: a WebSocket at /ws, held by a worker (frame-receiver.js) off this thread. Each frame
 * arrives as binary messages (WEBSOCKET.md); the worker times its arrival (first message to
 * last), decodes it (JPEG, or H.264 with WebCodecs where the browser has it: a secure context,
 * HTTPS or localhost; elsewhere the server sends this tab JPEG) and hands the picture here; this page draws it on the canvas and tells the
 * worker, which only then acknowledges it with {type:'ack', seq, spanMs, spanBytes}: the server
 * keeps the bytes in flight to this tab under a window sized from those figures, and lowers the
 * quality rung when the link is slow. If the WebSocket keeps failing while the server answers, or
 * the browser has no module workers, the page falls back to /stream.mjpg in an <img>.
 *
 * Figures: an EventSource on /events: `stats` (the receiver's figures) and `status` (the server's:
 * viewers, the newest frame's age), each carrying both.
 */

const STALL_AFTER_MS = 2000;
/** This tab's latency figures cover this long... */
const LATENCY_SHOWN_MS = 5000;
/** ...and this much is kept (benchmarks read it through window.camstreamViewer). */
const LATENCY_KEPT_MS = 10000;
/** WebSocket connections that end without a single frame before the page falls back to MJPEG. */
const FAILURES_BEFORE_MJPEG = 3;
/** Close code of the server when the stream restarted: reconnect at once. */
const CLOSE_STREAM_RESTARTED = 1012;

/** @typedef {import('./frame-receiver.js').FrameHeader} FrameHeader */
/** @typedef {import('./frame-receiver.js').ToReceiver} ToReceiver */
/** @typedef {import('./frame-receiver.js').FromReceiver} FromReceiver */

/**
 * @typedef {object} ReceiverFigures
 * @property {number} fps
 * @property {number} decodedFps
 * @property {number} [shownFps] frames every sink of the receiver took, per second
 * @property {number} mbps
 * @property {{ p50: number, p95: number, p99: number } | null} latencyMs
 * @property {number} frames
 * @property {number | null} senderDropped null when the receiver's wire cannot tell (the tutorial's)
 * @property {number} skipped
 * @property {number | null} gaps null when the receiver's wire has no sequence numbers (the tutorial's)
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
  /** @type {number | null} */
  rung: null,
  /** frames the server skipped for this tab, over every connection so far */
  serverSkipped: 0,
  /** @type {'websocket' | 'mjpeg'} */
  transport: 'websocket',
  /** How the worker decodes, and why: 'H.264 (WebCodecs)', or 'JPEG: <reason>' */
  decoder: '',
  /** The worker decodes H.264 (WebCodecs) */
  h264: false,
  /** @type {'jpeg' | 'h264' | null} the codec of the last frame drawn */
  codec: /** @type {'jpeg' | 'h264' | null} */ (null),
  /** set once the canvas was sized for a frame */
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

// ---- pictures: drawn as the frame receiver hands them over ----

/** @type {Worker | null} */
let receiver = null;
let reconnectDelayMs = 500;
/** Frames the server skipped for this tab on connections before the current one. */
let skippedOnEarlierConnections = 0;
/** ...and on the current one so far (the header's `dropped` counts per connection). */
let skippedOnThisConnection = 0;

/** @param {ToReceiver} message */
function tellReceiver(message) {
  receiver?.postMessage(message);
}

function connectVideo() {
  const url = new URL('ws', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  url.searchParams.set('client', clientId);
  tellReceiver({ type: 'connect', url: url.href });
}

/** @param {Extract<FromReceiver, { type: 'frame' }>} message */
function draw(message) {
  const { header, picture } = message;
  // An ImageBitmap (JPEG) or a VideoFrame (H.264, WebCodecs): both draw, and both must be closed.
  const pictureSize = 'displayWidth' in picture ? { width: picture.displayWidth, height: picture.displayHeight } : picture;
  // The canvas keeps the stream's own size (a rung-0 frame's, else the server's figure for the
  // stream); lower rungs are scaled up to it, so the page does not jump when the rung changes.
  const stream = server.status?.frame;
  const size = header.rung === 0 ? pictureSize : stream ?? (tab.sized ? canvas : pictureSize);
  if (canvas.width !== size.width || canvas.height !== size.height) {
    canvas.width = size.width;
    canvas.height = size.height;
  }
  tab.sized = true;
  context.drawImage(picture, 0, 0, canvas.width, canvas.height);
  picture.close();
  tab.codec = header.codec;
  // Drawn: the receiver may acknowledge it now.
  tellReceiver({ type: 'drawn', seq: header.seq });
  const now = performance.now();
  const wallNow = wallClockMs();
  tab.shown++;
  tab.lastShownAt = now;
  tab.lastSeq = header.seq;
  tab.rung = header.rung;
  tab.skipped = message.skipped;
  tab.decodeErrors = message.decodeErrors;
  skippedOnThisConnection = header.dropped;
  tab.serverSkipped = skippedOnEarlierConnections + skippedOnThisConnection;
  tab.shownAt.push(now);
  tab.latencies.push({ at: now, ms: wallNow - header.captureTime, seq: header.seq, rung: header.rung, drawMs: wallNow - message.arrivedAt });
  canvas.dataset['seq'] = String(header.seq);
  canvas.dataset['shown'] = String(tab.shown);
  // Lift the "waiting"/"stalled" overlay at once rather than at the next tick.
  if (overlay.classList.contains('shown')) update();
}

/** @param {MessageEvent<FromReceiver>} event */
function fromReceiver(event) {
  const message = event.data;
  switch (message.type) {
    case 'open':
      links.video = true;
      links.videoError = '';
      tab.decoder = message.decoder.note;
      tab.h264 = message.decoder.h264;
      return;
    case 'frame':
      links.failures = 0;
      reconnectDelayMs = 500;
      draw(message);
      return;
    case 'closed': {
      links.video = false;
      links.videoError = message.reason || `WebSocket closed (${message.code})`;
      skippedOnEarlierConnections += skippedOnThisConnection;
      skippedOnThisConnection = 0;
      if (message.frames === 0) links.failures++;
      // A server that answers while its WebSocket never delivers (a proxy that does not pass
      // WebSockets, say): show the MJPEG stream instead, without this tab's own figures.
      if (links.failures >= FAILURES_BEFORE_MJPEG && links.events) {
        fallBackToMjpeg();
        return;
      }
      const delay = message.code === CLOSE_STREAM_RESTARTED ? 0 : reconnectDelayMs;
      reconnectDelayMs = Math.min(reconnectDelayMs * 2, 5000);
      setTimeout(connectVideo, delay);
      return;
    }
  }
}

function startVideo() {
  try {
    receiver = new Worker(new URL('frame-receiver.js', import.meta.url), { type: 'module' });
  } catch {
    fallBackToMjpeg();
    return;
  }
  receiver.onmessage = fromReceiver;
  // The worker could not load (no module workers here, say): MJPEG needs none.
  receiver.onerror = () => fallBackToMjpeg();
  connectVideo();
}

function fallBackToMjpeg() {
  if (tab.transport === 'mjpeg') return;
  receiver?.terminate();
  receiver = null;
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
  setText('stat-shown-fps', num(stats.shownFps, 1));
  setText('stat-mbps', num(stats.mbps, 2));
  setText('stat-frames', String(stats.frames));
  const latency = stats.latencyMs;
  setText('stat-p50', latency ? num(latency.p50, 1) : '–');
  setText('stat-p95', latency ? num(latency.p95, 1) : '–');
  setText('stat-p99', latency ? num(latency.p99, 1) : '–');
  setText('stat-dropped', stats.senderDropped === null ? 'n/a' : String(stats.senderDropped));
  setText('stat-skipped', String(stats.skipped));
  setText('stat-gaps', stats.gaps === null ? 'n/a' : String(stats.gaps), stats.gaps !== null && stats.gaps > 0);
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
  setText('tab-transport', byWebSocket ? `WebSocket, ${tab.decoder || 'connecting'}${tab.codec ? ` (now ${tab.codec === 'h264' ? 'H.264' : 'JPEG'})` : ''}` : 'MJPEG (no latency bound)');

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
if (typeof Worker === 'function' && typeof WebSocket === 'function' && typeof createImageBitmap === 'function') startVideo();
else fallBackToMjpeg();
update();
setInterval(update, 500);
