// @ts-check
/**
 * camstream's page of several cameras (served as is by @camstream/browser's BrowserHub;
 * type-checked by page/tsconfig.json). One tile per camera. Each tile has its own frame receiver
 * (frame-receiver.js, a worker) with its own WebSocket at ws?camera=NAME: its own flow-control
 * window and quality rung, so a camera with large frames or a slow path never holds up another
 * (WEBSOCKET.md). The figures of every camera come from one EventSource at /events (`cameras`
 * events, once a second); a camera whose frames stopped is marked STOPPED over its last picture.
 */

/** A tile's picture older than this (and the server's too) is stalled. */
const STALL_AFTER_MS = 2000;
const CLOSE_STREAM_RESTARTED = 1012;

/** @typedef {import('./frame-receiver.js').FromReceiver} FromReceiver */
/** @typedef {import('./frame-receiver.js').ToReceiver} ToReceiver */

/**
 * @typedef {object} CameraFigures
 * @property {number} fps
 * @property {{ p50: number, p95: number, p99: number } | null} latencyMs
 * @property {number} frames
 * @property {number | null} senderDropped null when the camera's wire cannot tell (the tutorial's)
 * @property {number} skipped
 * @property {number | null} gaps null when the camera's wire has no sequence numbers (the tutorial's)
 * @property {number} corrupt
 * @property {number} [lostInTransport]
 * @property {number} [refused]
 * @property {'waiting' | 'live' | 'stopped'} [state]
 * @property {string} [label]
 * @property {{ index: number } | null} [rung]
 */

/**
 * @typedef {object} CameraEntry
 * @property {string} camera
 * @property {CameraFigures | null} stats
 * @property {{ frame: { seq: number, width: number, height: number } | null, frameAgeMs: number | null, tabs: number }} server
 */

/** @param {string} id */
function element(id) {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found;
}

const clientId = Math.random().toString(36).slice(2, 10) + Date.now().toString(36);
const grid = element('grid');
const badge = element('state');
const summary = element('summary');
const noCameras = element('no-cameras');

/**
 * @param {unknown} value
 * @param {number} digits
 */
function num(value, digits) {
  return typeof value === 'number' && Number.isFinite(value) ? value.toFixed(digits) : '–';
}

/** One camera's tile: its canvas, its frame receiver, its figures. */
class Tile {
  /** @param {string} camera */
  constructor(camera) {
    this.camera = camera;
    this.figure = document.createElement('figure');
    this.figure.className = 'tile';
    this.figure.dataset['camera'] = camera;
    const picture = document.createElement('div');
    picture.className = 'picture';
    this.canvas = document.createElement('canvas');
    this.canvas.width = 320;
    this.canvas.height = 240;
    this.canvas.setAttribute('aria-label', `live video of ${camera}`);
    this.context = /** @type {CanvasRenderingContext2D} */ (this.canvas.getContext('2d'));
    this.overlay = document.createElement('div');
    this.overlay.className = 'overlay shown';
    this.overlay.textContent = 'waiting for the first frame…';
    picture.append(this.canvas, this.overlay);
    const caption = document.createElement('figcaption');
    this.name = document.createElement('div');
    this.name.className = 'name';
    this.name.textContent = camera;
    this.figures = document.createElement('div');
    this.figures.className = 'figures';
    this.figures.textContent = '–';
    caption.append(this.name, this.figures);
    this.figure.append(picture, caption);
    grid.append(this.figure);
    this.shown = 0;
    this.lastShownAt = 0;
    /** @type {CameraEntry | null} */
    this.entry = null;
    this.entryAt = 0;
    this.reconnectDelayMs = 500;
    this.receiver = new Worker(new URL('frame-receiver.js', import.meta.url), { type: 'module' });
    this.receiver.onmessage = (/** @type {MessageEvent<FromReceiver>} */ event) => this.fromReceiver(event.data);
    this.connect();
  }

  connect() {
    const url = new URL('ws', location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    url.search = '';
    url.searchParams.set('camera', this.camera);
    url.searchParams.set('client', `${clientId}-${this.camera}`);
    this.tell({ type: 'connect', url: url.href });
  }

  /** @param {ToReceiver} message */
  tell(message) {
    this.receiver.postMessage(message);
  }

  /** @param {FromReceiver} message */
  fromReceiver(message) {
    if (message.type === 'frame') {
      this.reconnectDelayMs = 500;
      this.draw(message);
    } else if (message.type === 'closed') {
      const delay = message.code === CLOSE_STREAM_RESTARTED ? 0 : this.reconnectDelayMs;
      this.reconnectDelayMs = Math.min(this.reconnectDelayMs * 2, 5000);
      setTimeout(() => this.connect(), delay);
    }
  }

  /** @param {Extract<FromReceiver, { type: 'frame' }>} message */
  draw(message) {
    const { header, picture } = message;
    // An ImageBitmap (JPEG) or a VideoFrame (H.264, WebCodecs): only the latter has display sizes.
    const pictureSize = 'displayWidth' in picture ? { width: picture.displayWidth, height: picture.displayHeight } : picture;
    // The stream's own size; lower rungs are scaled up to it.
    const stream = this.entry?.server.frame;
    const size = header.rung === 0 ? pictureSize : stream ?? pictureSize;
    if (this.canvas.width !== size.width || this.canvas.height !== size.height) {
      this.canvas.width = size.width;
      this.canvas.height = size.height;
    }
    this.context.drawImage(picture, 0, 0, this.canvas.width, this.canvas.height);
    picture.close();
    this.tell({ type: 'drawn', seq: header.seq });
    this.shown++;
    this.lastShownAt = performance.now();
    this.canvas.dataset['seq'] = String(header.seq);
    this.canvas.dataset['rung'] = String(header.rung);
    if (this.overlay.classList.contains('shown')) this.update();
  }

  /** @param {CameraEntry} entry */
  setEntry(entry) {
    this.entry = entry;
    this.entryAt = performance.now();
    const s = entry.stats;
    if (s?.label) this.name.textContent = s.label;
    if (!s) return;
    const parts = [
      `${num(s.fps, 1)} fps`,
      `p99 ${s.latencyMs ? num(s.latencyMs.p99, 0) : '–'} ms`,
      `dropped ${s.senderDropped ?? 'n/a'}`,
      `skipped ${s.skipped}`,
      `gaps ${s.gaps ?? 'n/a'}`,
      `corrupt ${s.corrupt}`,
    ];
    if (s.lostInTransport !== undefined) parts.push(`lost ${s.lostInTransport}`);
    if (s.refused) parts.push(`refused ${s.refused}`);
    if (s.rung) parts.push(`rung ${s.rung.index}`);
    if (entry.server.frame) parts.push(`frame ${entry.server.frame.seq}`);
    this.figures.textContent = parts.join(' · ');
    this.figures.classList.toggle('alarm', (s.gaps ?? 0) > 0 || s.corrupt > 0);
    this.update();
  }

  update() {
    const now = performance.now();
    const state = this.entry?.stats?.state;
    const serverAge = this.entry?.server.frameAgeMs == null ? null : this.entry.server.frameAgeMs + (now - this.entryAt);
    let message = '';
    let stopped = false;
    if (state === 'stopped') {
      message = 'STOPPED';
      stopped = true;
    } else if (!this.shown) {
      message = state === 'waiting' || !this.entry?.server.frame ? 'NO SIGNAL' : 'waiting for the first frame…';
    } else if (now - this.lastShownAt > STALL_AFTER_MS) {
      message = serverAge !== null && serverAge > STALL_AFTER_MS ? `stalled: no frame for ${(serverAge / 1000).toFixed(1)} s` : 'no new frame shown';
    }
    this.overlay.textContent = message;
    this.overlay.classList.toggle('shown', message !== '');
    this.overlay.classList.toggle('stopped', stopped);
    this.figure.classList.toggle('stopped', stopped);
    this.canvas.classList.toggle('stale', message !== '' && this.shown > 0);
    this.figure.dataset['state'] = stopped ? 'stopped' : message ? 'stalled' : 'live';
  }
}

/** @type {Map<string, Tile>} */
const tiles = new Map();

/** @param {MessageEvent<string>} event */
function onCameras(event) {
  const { cameras } = /** @type {{ cameras: CameraEntry[] }} */ (JSON.parse(event.data));
  for (const entry of cameras) {
    let tile = tiles.get(entry.camera);
    if (!tile) {
      tile = new Tile(entry.camera);
      tiles.set(entry.camera, tile);
    }
    tile.setEntry(entry);
  }
  noCameras.hidden = tiles.size > 0;
  const stopped = cameras.filter((entry) => entry.stats?.state === 'stopped').length;
  summary.textContent = `${cameras.length} camera${cameras.length === 1 ? '' : 's'}${stopped ? `, ${stopped} stopped` : ''}`;
}

function listen() {
  const events = new EventSource('events');
  events.onopen = () => {
    badge.className = 'badge live';
    badge.textContent = 'CONNECTED';
  };
  events.onerror = () => {
    badge.className = 'badge stalled';
    badge.textContent = 'RECONNECTING';
    if (events.readyState === EventSource.CLOSED) setTimeout(listen, 5000);
  };
  events.addEventListener('cameras', onCameras);
}

// Tests and benchmarks read each tile here.
Object.assign(window, { camstreamGrid: { clientId, tiles } });
listen();
setInterval(() => {
  for (const tile of tiles.values()) tile.update();
}, 500);
