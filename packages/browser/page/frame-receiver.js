// @ts-check
/**
 * The page's frame receiver, a module worker started by viewer.js: it holds the WebSocket at /ws,
 * rebuilds each frame from its messages (WEBSOCKET.md), times its arrival, decodes it, hands the
 * picture to the page and, once the page has drawn it, acknowledges it. It runs off the page's
 * main thread so that layout, drawing and figures there do not stretch the arrival times the
 * server sizes its window from. Latest-wins throughout: while a frame decodes, and while the page
 * draws, only the newest frame waits.
 */

const FRAME_VERSION = 1;
const HEADER_BYTES = 32;
const MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;
/** Close code for a malformed frame (4000-4999: for applications). */
const CLOSE_BAD_FRAME = 4000;

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
 * What the page tells the receiver.
 * @typedef {{ type: 'connect', url: string } | { type: 'drawn', seq: number }} ToReceiver
 */

/**
 * What the receiver tells the page. Times are wall clock (ms since the Unix epoch): the worker's
 * performance.now() has another origin than the page's.
 * @typedef {{ type: 'open' }
 *   | { type: 'closed', code: number, reason: string, frames: number }
 *   | { type: 'frame', header: FrameHeader, bitmap: ImageBitmap, arrivedAt: number, skipped: number, decodeErrors: number }} FromReceiver
 */

/**
 * @typedef {object} ArrivedFrame
 * @property {FrameHeader} header
 * @property {Blob} jpeg
 * @property {number} spanMs first message to last, as they arrived here
 * @property {number} spanBytes bytes of the messages after the first
 * @property {number} arrivedAt wall clock when its last message arrived
 * @property {Connection} connection the one it came by, which its ack goes back on
 */

/** @param {FromReceiver} message @param {Transferable[]} [transfer] */
function tell(message, transfer = []) {
  self.postMessage(message, { transfer });
}

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
   * @returns {{ header: FrameHeader, jpeg: Blob, spanMs: number, spanBytes: number } | null} the frame once complete
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
    return { header, jpeg, spanMs: now - this.firstAt, spanBytes: this.spanBytes };
  }
}

/** One WebSocket and what was acknowledged on it. */
class Connection {
  /** @param {string} url */
  constructor(url) {
    this.socket = new WebSocket(url);
    this.socket.binaryType = 'arraybuffer';
    this.assembler = new FrameAssembler();
    this.frames = 0;
    this.lastAcked = -1;
    this.socket.onopen = () => tell({ type: 'open' });
    this.socket.onmessage = (event) => this.message(event);
    this.socket.onclose = (event) => {
      if (current === this) current = null;
      tell({ type: 'closed', code: event.code, reason: event.reason, frames: this.frames });
    };
  }

  /** @param {MessageEvent} event */
  message(event) {
    const now = performance.now();
    if (!(event.data instanceof ArrayBuffer)) return;
    try {
      const frame = this.assembler.push(event.data, now);
      if (frame === null) return;
      this.frames++;
      arrived({ ...frame, arrivedAt: performance.timeOrigin + now, connection: this });
    } catch (err) {
      this.socket.close(CLOSE_BAD_FRAME, String(err instanceof Error ? err.message : err).slice(0, 100));
    }
  }

  /**
   * Acknowledges a frame (and, cumulatively, every earlier one); never one at or before the last
   * acknowledged, which the server would take for a protocol error.
   * @param {ArrivedFrame} frame
   */
  ack(frame) {
    const { seq } = frame.header;
    if (seq <= this.lastAcked || this.socket.readyState !== WebSocket.OPEN) return;
    this.lastAcked = seq;
    this.socket.send(JSON.stringify({ type: 'ack', seq, spanMs: Math.round(frame.spanMs * 100) / 100, spanBytes: frame.spanBytes }));
  }
}

/** @type {Connection | null} */
let current = null;
let decoding = false;
/** @type {ArrivedFrame | null} the newest frame waiting for the decoder */
let waitingToDecode = null;
/** @type {{ frame: ArrivedFrame, bitmap: ImageBitmap } | null} the newest picture waiting for the page */
let ready = null;
/** @type {ArrivedFrame | null} the frame the page is drawing */
let drawing = null;
let skipped = 0;
let decodeErrors = 0;

/** @param {ArrivedFrame} frame */
function arrived(frame) {
  if (decoding) {
    if (waitingToDecode) skipped++;
    waitingToDecode = frame;
    return;
  }
  void decode(frame);
}

/** @param {ArrivedFrame} first */
async function decode(first) {
  decoding = true;
  /** @type {ArrivedFrame | null} */
  let frame = first;
  while (frame) {
    try {
      const bitmap = await createImageBitmap(frame.jpeg);
      if (drawing) {
        if (ready) {
          ready.bitmap.close();
          skipped++;
        }
        ready = { frame, bitmap };
      } else {
        show(frame, bitmap);
      }
    } catch {
      // It arrived, though it cannot be shown: acknowledge it, so the window does not stay shut.
      decodeErrors++;
      frame.connection.ack(frame);
    }
    frame = waitingToDecode;
    waitingToDecode = null;
  }
  decoding = false;
}

/**
 * @param {ArrivedFrame} frame
 * @param {ImageBitmap} bitmap
 */
function show(frame, bitmap) {
  drawing = frame;
  tell({ type: 'frame', header: frame.header, bitmap, arrivedAt: frame.arrivedAt, skipped, decodeErrors }, [bitmap]);
}

self.addEventListener('message', (event) => {
  const message = /** @type {ToReceiver} */ (event.data);
  if (message.type === 'connect') {
    if (current) current.socket.close();
    current = new Connection(message.url);
  } else if (message.type === 'drawn' && drawing !== null && drawing.header.seq === message.seq) {
    // Drawn: only now may the server count the frame as delivered.
    drawing.connection.ack(drawing);
    drawing = null;
    const next = ready;
    ready = null;
    if (next) show(next.frame, next.bitmap);
  }
});

// A module (the page loads it with type: 'module'), so that viewer.js can import its types.
export {};
