import { WebSocket } from 'ws';
import { decodeTabFrameHeader, TAB_FRAME_HEADER_BYTES, type TabFrameHeader } from '../tab-frames';

/** A frame as a tab received it. */
export interface TabFrame {
  header: TabFrameHeader;
  payload: Buffer;
  /** Sizes of the binary messages it came in. */
  messageBytes: number[];
}

/**
 * What the tab answers for each frame: nothing, an ack at once with the figures it measured, or
 * an ack with the figures a function gives, after `delayMs` (a page on a slow link gets each
 * frame that much later).
 */
export type AckPolicy = 'none' | 'fast' | ((frame: TabFrame) => { spanMs: number; spanBytes: number; delayMs?: number } | undefined);

/**
 * A WebSocket client from the `ws` package acting as the page: it reassembles each frame from its
 * messages exactly as page/viewer.js does, and acknowledges frames as its policy says.
 */
export class TestTab {
  readonly frames: TabFrame[] = [];
  readonly socket: WebSocket;
  /** Resolves with the close code and reason once the connection is closed. */
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly opened: Promise<void>;
  ackPolicy: AckPolicy;
  /** What was wrong with what the server sent, if anything (a test asserts there is nothing). */
  readonly errors: string[] = [];
  private partial: TabFrame | undefined;
  private ackQueue: Promise<void> = Promise.resolve();

  constructor(url: string, options: { ack?: AckPolicy; headers?: Record<string, string> } = {}) {
    this.ackPolicy = options.ack ?? 'fast';
    this.socket = new WebSocket(url, { headers: options.headers ?? {}, perMessageDeflate: false });
    this.opened = new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve());
      this.socket.once('unexpected-response', (_req, res) => reject(new Error(`WebSocket refused: HTTP ${res.statusCode}`)));
      this.socket.once('error', reject);
    });
    this.closed = new Promise((resolve) => this.socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    this.socket.on('error', () => undefined);
    this.socket.on('message', (data, isBinary) => {
      try {
        if (!isBinary) throw new Error(`the server sent a text message: ${String(data)}`);
        this.message(data as Buffer);
      } catch (err) {
        this.errors.push((err as Error).message);
      }
    });
  }

  /** The seqs received, in order. */
  get seqs(): number[] {
    return this.frames.map((frame) => frame.header.seq);
  }

  get last(): TabFrame | undefined {
    return this.frames.at(-1);
  }

  ack(seq: number, spanMs = 0, spanBytes = 0): void {
    this.socket.send(JSON.stringify({ type: 'ack', seq, spanMs, spanBytes }));
  }

  /** Resolves once everything the server sent before now has arrived (a ping's pong comes after it). */
  settled(): Promise<void> {
    return new Promise((resolve) => {
      this.socket.once('pong', () => resolve());
      this.socket.ping();
    });
  }

  async waitForFrames(count: number, timeoutMs = 5000): Promise<void> {
    await waitFor(() => this.frames.length >= count || this.errors.length > 0, `${count} frames (got ${this.frames.length})`, timeoutMs);
    if (this.errors.length > 0) throw new Error(`bad frames from the server: ${this.errors.join('; ')}`);
  }

  close(): Promise<{ code: number; reason: string }> {
    this.socket.close();
    return this.closed;
  }

  private message(data: Buffer): void {
    if (!this.partial) {
      const header = decodeTabFrameHeader(data);
      this.partial = { header, payload: Buffer.alloc(0), messageBytes: [] };
      data = data.subarray(TAB_FRAME_HEADER_BYTES);
      this.partial.messageBytes.push(data.length + TAB_FRAME_HEADER_BYTES);
    } else {
      this.partial.messageBytes.push(data.length);
    }
    const frame = this.partial;
    frame.payload = Buffer.concat([frame.payload, data]);
    if (frame.payload.length > frame.header.payloadBytes) throw new Error(`frame ${frame.header.seq}: more bytes than its header said`);
    if (frame.payload.length < frame.header.payloadBytes) return;
    this.partial = undefined;
    this.frames.push(frame);
    const policy = this.ackPolicy;
    if (policy === 'none') return;
    const figures = policy === 'fast' ? { spanMs: 0, spanBytes: frame.messageBytes.slice(1).reduce((a, b) => a + b, 0) } : policy(frame);
    if (!figures) return;
    const send = () => {
      if (this.socket.readyState === this.socket.OPEN) this.ack(frame.header.seq, figures.spanMs, figures.spanBytes);
    };
    // Acks leave in order: a delayed one goes after those before it.
    if (figures.delayMs) {
      this.ackQueue = this.ackQueue.then(() => new Promise<void>((resolve) => setTimeout(() => {
        send();
        resolve();
      }, figures.delayMs)));
    } else {
      this.ackQueue = this.ackQueue.then(send);
    }
  }
}

export async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
