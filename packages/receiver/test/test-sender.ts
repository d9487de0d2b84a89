import net from 'node:net';
import tls from 'node:tls';
import {
  encodeMessage,
  frameHeader,
  MessageDecoder,
  SenderSession,
  type FrameFields,
  type ProtocolError,
  type Header,
  type SenderSessionEnd,
  type SenderSessionEvent,
  type StreamDescription,
} from '@camstream/protocol';
import { listenOnFreePort } from '@camstream/testkit';

/*
 * A sender for the receiver's tests and benchmark, on the protocol's own SenderSession over real
 * sockets: the handshake (with a secret, over TLS), acks into the flow window, bye and error are
 * the reference state machine's; the frames are whatever the test writes, when it writes them
 * (in pieces, with gaps, or bytes the encoder would refuse to make).
 */

export interface TestSenderOptions {
  stream: StreamDescription;
  name?: string;
  secret?: string;
  /** Serve TLS with this certificate and key. */
  tls?: { cert: Buffer; key: Buffer };
}

export interface ReceivedAck {
  seq: number;
  spanMs: number;
  spanBytes: number;
}

/** One receiver's connection, as the sender sees it. */
export class TestConnection {
  readonly session: SenderSession;
  /** Every message the receiver sent, in order. */
  readonly received: Header[] = [];
  readonly acks: ReceivedAck[] = [];
  /** Set when the session ended (bye, error either way, or this side left). */
  end: SenderSessionEnd | undefined;
  /** Resolves when the receiver finished the handshake (its frames may go), rejects if it ended first. */
  readonly joined: Promise<void>;
  /** Resolves when the socket is closed. */
  readonly closed: Promise<void>;
  private readonly decoder = new MessageDecoder({ maxMessageBytes: 64 * 1024 });
  private waiters: Array<() => void> = [];
  private isClosed = false;
  private onJoined!: () => void;
  private onEndedEarly!: (error: Error) => void;

  constructor(readonly socket: net.Socket, options: TestSenderOptions) {
    this.session = new SenderSession({ stream: options.stream, now: performance.now(), ...(options.name ? { name: options.name } : {}), ...(options.secret ? { secret: options.secret } : {}) });
    this.joined = new Promise<void>((resolve, reject) => {
      this.onJoined = resolve;
      this.onEndedEarly = reject;
    });
    this.joined.catch(() => undefined); // a test that never waits for it is not told
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.setNoDelay(true);
    socket.on('error', () => undefined); // a reset is a close like any other here
    socket.on('close', () => {
      this.isClosed = true;
      this.onEndedEarly(new Error('the connection closed before the handshake finished'));
      this.notify();
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const message of this.decoder.push(chunk)) {
          this.received.push(message.header);
          if (message.header.type === 'ack') this.acks.push({ seq: message.header.seq, spanMs: message.header.spanMs, spanBytes: message.header.spanBytes });
          this.handle(this.session.receive(message.header, performance.now()));
        }
      } catch (error) {
        this.handle(this.session.fail(error as ProtocolError));
      }
      this.notify();
    });
  }

  /** Writes a valid frame (built from `fields`) whole, and records it in the flow window. */
  sendFrame(payload: Buffer, fields: Omit<FrameFields, 'dropped'> & { dropped?: number }): Promise<number> {
    return this.sendFrameInPieces(payload, fields, [], 0);
  }

  /**
   * Writes a frame message cut at `cuts` (byte offsets into the whole message), waiting `gapMs`
   * after each piece has gone to the kernel: the receiver reads it in that many reads, that far apart.
   */
  async sendFrameInPieces(payload: Buffer, fields: Omit<FrameFields, 'dropped'> & { dropped?: number }, cuts: readonly number[], gapMs: number): Promise<number> {
    const bytes = frameBytes(payload, { ...fields, dropped: fields.dropped ?? this.session.dropped });
    this.session.frameSent(fields.seq, bytes.length, performance.now());
    let start = 0;
    for (const cut of [...cuts, bytes.length]) {
      await this.write(bytes.subarray(start, cut));
      start = cut;
      if (cut < bytes.length && gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
    }
    return bytes.length;
  }

  /** Bytes as they are: not checked, not recorded in the flow window. */
  write(bytes: Buffer): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.write(bytes, () => resolve());
    });
  }

  /** The sender leaves with a bye and closes its side. */
  leave(reason = 'test sender leaving'): void {
    this.handle(this.session.leave(reason));
  }

  /** Resolves once `condition` holds, re-checked after every message from the receiver; rejects if the connection closes first. */
  async until(condition: () => boolean, what: string): Promise<void> {
    for (;;) {
      if (condition()) return;
      if (this.isClosed) throw new Error(`the connection closed before ${what}`);
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  private handle(events: SenderSessionEvent[]): void {
    for (const event of events) {
      if (event.type === 'send') {
        if (!this.socket.destroyed) this.socket.write(encodeMessage(event.header).head);
      } else if (event.type === 'joined') {
        this.onJoined();
      } else if (event.type === 'closed') {
        this.end = event.end;
        this.onEndedEarly(new Error(`the session ended before the handshake finished: ${event.end.kind}`));
        this.socket.end();
      }
    }
  }

  private notify(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }
}

/** Listens on 127.0.0.1 and runs a SenderSession per accepted connection. */
export class TestSender implements AsyncDisposable {
  readonly connections: TestConnection[] = [];
  private waiters: Array<() => void> = [];

  /** Set once listening. */
  port = 0;

  private constructor(private readonly server: net.Server) {}

  static async start(options: TestSenderOptions): Promise<TestSender> {
    const server = options.tls ? tls.createServer({ cert: options.tls.cert, key: options.tls.key }) : net.createServer();
    const sender = new TestSender(server);
    server.on(options.tls ? 'secureConnection' : 'connection', (socket: net.Socket) => {
      sender.connections.push(new TestConnection(socket, options));
      for (const wake of sender.waiters.splice(0)) wake();
    });
    server.on('tlsClientError', () => undefined); // a receiver that distrusts us hangs up: its side reports it
    sender.port = await listenOnFreePort(server);
    return sender;
  }

  /** The n-th connection (from 1), once it is accepted. */
  async connection(n: number): Promise<TestConnection> {
    while (this.connections.length < n) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.connections[n - 1]!;
  }

  async close(): Promise<void> {
    for (const c of this.connections) c.socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** A whole frame message (head and payload in one Buffer). */
export function frameBytes(payload: Buffer, fields: FrameFields): Buffer {
  const { head } = encodeMessage(frameHeader(payload, fields), payload);
  return Buffer.concat([head, payload]);
}

/** A raw-bgr stream description. */
export function rawStream(width: number, height: number, extra: Partial<StreamDescription> = {}): StreamDescription {
  return { width, height, fps: 30, pixelFormat: 'bgr24', encoding: 'raw-bgr', ...extra };
}
