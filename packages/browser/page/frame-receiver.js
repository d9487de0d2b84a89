// @ts-check
/**
 * The page's frame receiver, a module worker started by viewer.js: it holds the WebSocket at /ws,
 * rebuilds each frame from its messages (WEBSOCKET.md), times its arrival, decodes it, hands the
 * picture to the page and, once the page has drawn it, acknowledges it. It runs off the page's
 * main thread so that layout, drawing and figures there do not stretch the arrival times the
 * server sizes its window from.
 *
 * JPEG frames are latest-wins throughout: while one decodes, only the newest waits. H.264 frames
 * (when WebCodecs can decode them: a secure context, localhost or HTTPS, and a browser that has
 * VideoDecoder) all go to one VideoDecoder in order, since each picture needs the ones before it;
 * latest-wins applies to the decoded pictures, while the page draws. Without WebCodecs the
 * receiver asks the server for JPEG only, and says why.
 */

const FRAME_VERSION = 1;
/** A header of 32 bytes (before the codec byte was appended) is a JPEG frame. */
const MIN_HEADER_BYTES = 32;
const CODEC_HEADER_BYTES = 36;
const MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;
/** Close code for a malformed frame (4000-4999: for applications). */
const CLOSE_BAD_FRAME = 4000;
/** Asked of WebCodecs before connecting: Constrained Baseline, level 3.1 (x264 ultrafast at 720p). */
const H264_PROBE_CODEC = 'avc1.42C01F';

/**
 * @typedef {object} FrameHeader
 * @property {number} seq
 * @property {number} captureTime wall clock, ms since the Unix epoch
 * @property {number} width
 * @property {number} height
 * @property {number} rung 0: the stream itself
 * @property {number} dropped frames the server skipped for this connection so far
 * @property {number} payloadBytes
 * @property {'jpeg' | 'h264'} codec
 * @property {boolean} keyframe an H.264 access unit decoding can start at
 */

/**
 * What the page tells the receiver.
 * @typedef {{ type: 'connect', url: string } | { type: 'drawn', seq: number }} ToReceiver
 */

/**
 * How this tab decodes: H.264 with WebCodecs (and JPEG), or JPEG only, and why.
 * @typedef {{ h264: boolean, note: string }} DecoderChoice
 */

/**
 * What the receiver tells the page. Times are wall clock (ms since the Unix epoch): the worker's
 * performance.now() has another origin than the page's.
 * @typedef {{ type: 'open', decoder: DecoderChoice }
 *   | { type: 'closed', code: number, reason: string, frames: number }
 *   | { type: 'frame', header: FrameHeader, picture: ImageBitmap | VideoFrame, arrivedAt: number, skipped: number, decodeErrors: number }} FromReceiver
 */

/**
 * @typedef {object} ArrivedFrame
 * @property {FrameHeader} header
 * @property {Uint8Array<ArrayBuffer>} payload a copy: the JPEG or the access unit
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
  if (data.byteLength < MIN_HEADER_BYTES) throw new Error(`a frame's first message has ${data.byteLength} bytes, less than its header`);
  const view = new DataView(data);
  const version = view.getUint8(0);
  if (version !== FRAME_VERSION) throw new Error(`frame header version ${version}, this page reads ${FRAME_VERSION}`);
  const headerBytes = view.getUint16(2);
  if (headerBytes < MIN_HEADER_BYTES || headerBytes > data.byteLength) throw new Error(`a frame header of ${headerBytes} bytes`);
  const codecByte = headerBytes >= CODEC_HEADER_BYTES ? view.getUint8(32) : 0;
  if (codecByte > 1) throw new Error(`frame codec ${codecByte}, this page reads 0 (JPEG) and 1 (H.264)`);
  /** @type {FrameHeader} */
  const header = {
    rung: view.getUint8(1),
    payloadBytes: view.getUint32(4),
    seq: view.getFloat64(8),
    captureTime: view.getFloat64(16),
    dropped: view.getUint32(24),
    width: view.getUint16(28),
    height: view.getUint16(30),
    codec: codecByte === 1 ? 'h264' : 'jpeg',
    keyframe: headerBytes >= CODEC_HEADER_BYTES && (view.getUint8(33) & 1) === 1,
  };
  if (header.payloadBytes > MAX_PAYLOAD_BYTES) throw new Error(`a frame of ${header.payloadBytes} bytes`);
  return { header, headerBytes };
}

/** Collects one frame's messages into one buffer (reused: each frame's payload is copied out of it). */
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
   * @returns {{ header: FrameHeader, payload: Uint8Array<ArrayBuffer>, spanMs: number, spanBytes: number } | null} the frame once complete
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
    return { header, payload: this.buffer.slice(0, this.filled), spanMs: now - this.firstAt, spanBytes: this.spanBytes };
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
    this.socket.onopen = () => tell({ type: 'open', decoder: choice ?? { h264: false, note: 'not probed' } });
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
/** @type {DecoderChoice | null} */
let choice = null;
let decodingJpeg = false;
/** @type {ArrivedFrame | null} the newest JPEG frame waiting for the decoder */
let waitingToDecode = null;
/** @type {{ frame: ArrivedFrame, picture: ImageBitmap | VideoFrame } | null} the newest picture waiting for the page */
let ready = null;
/** @type {ArrivedFrame | null} the frame the page is drawing */
let drawing = null;
/** The newest frame handed to the page: an older picture (a JPEG decoded late) is not shown after it. */
let newestShown = -1;
let skipped = 0;
let decodeErrors = 0;

/**
 * Whether WebCodecs decodes H.264 here, and if not why: it exists only in secure contexts
 * (HTTPS, or http://localhost), and not in every browser.
 * @returns {Promise<DecoderChoice>}
 */
async function probeH264() {
  if (!self.isSecureContext) return { h264: false, note: 'JPEG: not a secure context (H.264 needs WebCodecs, which needs HTTPS or localhost)' };
  if (typeof VideoDecoder !== 'function') return { h264: false, note: 'JPEG: this browser has no WebCodecs VideoDecoder' };
  try {
    const { supported } = await VideoDecoder.isConfigSupported({ codec: H264_PROBE_CODEC, optimizeForLatency: true });
    return supported ? { h264: true, note: 'H.264 (WebCodecs)' } : { h264: false, note: 'JPEG: WebCodecs here cannot decode H.264' };
  } catch (err) {
    return { h264: false, note: `JPEG: WebCodecs refused H.264 (${err instanceof Error ? err.message : String(err)})` };
  }
}

/** The H.264 decoder, configured at the first keyframe; frames in it by their seq (the chunks' timestamps). */
const h264 = {
  /** @type {VideoDecoder | null} */
  decoder: null,
  codec: '',
  /** @type {Map<number, ArrivedFrame>} */
  pending: new Map(),
  /** The next access unit must be a keyframe: at the start, after an error, after a JPEG frame. */
  needsKeyframe: true,
};

/**
 * The codec string WebCodecs wants, `avc1.PPCCLL`, from the SPS in a keyframe's access unit:
 * profile_idc, the constraint flags byte and level_idc follow the SPS's NAL header byte.
 * @param {Uint8Array} accessUnit
 */
function codecStringOf(accessUnit) {
  for (let i = 0; i + 6 < accessUnit.length; i++) {
    // A start code 00 00 01, then an SPS (NAL type 7).
    if (accessUnit[i] === 0 && accessUnit[i + 1] === 0 && accessUnit[i + 2] === 1 && ((accessUnit[i + 3] ?? 0) & 0x1f) === 7) {
      const hex = (/** @type {number} */ byte) => byte.toString(16).toUpperCase().padStart(2, '0');
      return `avc1.${hex(accessUnit[i + 4] ?? 0)}${hex(accessUnit[i + 5] ?? 0)}${hex(accessUnit[i + 6] ?? 0)}`;
    }
  }
  return null;
}

/** @param {ArrivedFrame} frame */
function arrived(frame) {
  if (frame.header.codec === 'h264') return decodeH264(frame);
  // A JPEG in between: the H.264 after it starts at a keyframe again (the server sends it so).
  h264.needsKeyframe = true;
  if (decodingJpeg) {
    if (waitingToDecode) skipped++;
    waitingToDecode = frame;
    return;
  }
  void decodeJpegs(frame);
}

/** @param {ArrivedFrame} first */
async function decodeJpegs(first) {
  decodingJpeg = true;
  /** @type {ArrivedFrame | null} */
  let frame = first;
  while (frame) {
    try {
      picture(frame, await createImageBitmap(new Blob([frame.payload], { type: 'image/jpeg' })));
    } catch {
      // It arrived, though it cannot be shown: acknowledge it, so the window does not stay shut.
      decodeErrors++;
      frame.connection.ack(frame);
    }
    frame = waitingToDecode;
    waitingToDecode = null;
  }
  decodingJpeg = false;
}

/**
 * Every access unit goes to the decoder, in order: pictures refer to the ones before them.
 * @param {ArrivedFrame} frame
 */
function decodeH264(frame) {
  const { header } = frame;
  if (h264.needsKeyframe && !header.keyframe) {
    // Nothing to decode it against (the server sends none such): it arrived, so acknowledge it.
    decodeErrors++;
    frame.connection.ack(frame);
    return;
  }
  try {
    if (header.keyframe) {
      const codec = codecStringOf(frame.payload);
      if (codec === null) throw new Error(`keyframe ${header.seq} has no SPS`);
      if (!h264.decoder || h264.decoder.state === 'closed' || codec !== h264.codec) configureH264(codec);
    }
    const decoder = /** @type {VideoDecoder} */ (h264.decoder);
    h264.needsKeyframe = false;
    h264.pending.set(header.seq, frame);
    decoder.decode(new EncodedVideoChunk({ type: header.keyframe ? 'key' : 'delta', timestamp: header.seq, data: frame.payload }));
  } catch {
    h264Failed(frame);
  }
}

/** @param {string} codec */
function configureH264(codec) {
  if (h264.decoder && h264.decoder.state !== 'closed') h264.decoder.close();
  for (const waiting of h264.pending.values()) waiting.connection.ack(waiting);
  h264.pending.clear();
  const decoder = new VideoDecoder({
    output: (videoFrame) => {
      const frame = h264.pending.get(videoFrame.timestamp);
      // One access unit in, one picture out: the ones before it are done with too.
      for (const seq of h264.pending.keys()) if (seq <= videoFrame.timestamp) h264.pending.delete(seq);
      if (!frame) return videoFrame.close();
      picture(frame, videoFrame);
    },
    error: () => {
      const last = [...h264.pending.values()].at(-1);
      if (last) h264Failed(last);
    },
  });
  decoder.configure({ codec, optimizeForLatency: true });
  h264.decoder = decoder;
  h264.codec = codec;
}

/**
 * The decoder failed: count it, acknowledge what waited in it (it arrived), and start again at
 * the next keyframe with a new decoder.
 * @param {ArrivedFrame} frame
 */
function h264Failed(frame) {
  decodeErrors++;
  h264.needsKeyframe = true;
  for (const waiting of h264.pending.values()) waiting.connection.ack(waiting);
  h264.pending.clear();
  frame.connection.ack(frame);
  if (h264.decoder && h264.decoder.state !== 'closed') h264.decoder.close();
  h264.decoder = null;
}

/**
 * A decoded picture: to the page at once, or waiting for it (a newer one replaces it).
 * @param {ArrivedFrame} frame
 * @param {ImageBitmap | VideoFrame} decoded
 */
function picture(frame, decoded) {
  if (frame.header.seq <= newestShown || (ready && frame.header.seq <= ready.frame.header.seq)) {
    // Older than a picture already shown or waiting (a JPEG decoded after a newer H.264 picture).
    decoded.close();
    skipped++;
    return;
  }
  if (!drawing) return show(frame, decoded);
  if (ready) {
    ready.picture.close();
    skipped++;
  }
  ready = { frame, picture: decoded };
}

/**
 * @param {ArrivedFrame} frame
 * @param {ImageBitmap | VideoFrame} decoded
 */
function show(frame, decoded) {
  drawing = frame;
  newestShown = frame.header.seq;
  tell({ type: 'frame', header: frame.header, picture: decoded, arrivedAt: frame.arrivedAt, skipped, decodeErrors }, [decoded]);
}

const probed = probeH264().then((result) => (choice = result));

self.addEventListener('message', (event) => {
  const message = /** @type {ToReceiver} */ (event.data);
  if (message.type === 'connect') {
    void probed.then((decoders) => {
      if (current) current.socket.close();
      // A new connection starts at a keyframe: the decoder starts again with it.
      h264.needsKeyframe = true;
      newestShown = -1;
      const url = new URL(message.url);
      url.searchParams.set('codecs', decoders.h264 ? 'h264,jpeg' : 'jpeg');
      current = new Connection(url.href);
    });
  } else if (message.type === 'drawn' && drawing !== null && drawing.header.seq === message.seq) {
    // Drawn: only now may the server count the frame as delivered.
    drawing.connection.ack(drawing);
    drawing = null;
    const next = ready;
    ready = null;
    if (next) show(next.frame, next.picture);
  }
});

// A module (the page loads it with type: 'module'), so that viewer.js can import its types.
export {};
