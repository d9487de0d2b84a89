import net from 'node:net';
import {
  encodeMessage,
  MessageDecoder,
  ProtocolError,
  ReceiverSession,
  type AckHeader,
  type FrameHeader,
  type Header,
  type ReceiverSessionEnd,
  type ReceiverSessionEvent,
  type Rung,
  type StreamDescription,
} from '@camstream/protocol';

const EMPTY = Buffer.alloc(0);

export interface TestReceiverOptions {
  port: number;
  host?: string;
  name?: string;
  secret?: string;
  /**
   * Each ack waits this long after the previous one went out (a receiver that reads at once but
   * acknowledges slowly). Default 0: every ack goes at once.
   */
  ackDelayMs?: number;
  /** False: never acknowledge (a receiver that reads but stopped acknowledging). Default true. */
  acks?: boolean;
  /** False: frames are recorded without their payloads (long runs of large frames). Default true. */
  keepPayloads?: boolean;
  /** Changes what an ack reports before it goes (e.g. a slower or faster link). */
  rewriteAck?: (ack: AckHeader, frame: ReceivedFrame) => AckHeader;
}

export interface ReceivedFrame {
  readonly header: FrameHeader;
  readonly payload: Buffer;
  readonly rung: number;
  readonly declaredDrops: number;
  readonly undeclaredGap: number;
  /** performance.now() when it was checked. */
  readonly at: number;
}

/**
 * A receiver for the sender's tests, driven by the protocol's own ReceiverSession over a real
 * socket: it checks every frame (size per rung, sequence, declared drops, CRC) and acknowledges
 * it with the arrival span its decoder measured, unless told to delay or rewrite its acks.
 */
export class TestReceiver {
  readonly frames: ReceivedFrame[] = [];
  stream: StreamDescription | undefined;
  senderName: string | undefined;
  rungs: readonly Rung[] = [];
  /** Pings received (the session ignores them). */
  pings = 0;
  /** How the session ended; undefined while it runs. */
  end: ReceiverSessionEnd | undefined;
  /** Resolves once the socket closed (after the session ended, or when the sender cut it). */
  readonly closed: Promise<void>;
  private readonly session: ReceiverSession;
  private readonly decoder = new MessageDecoder();
  private ackChain: Promise<void> = Promise.resolve();
  private readonly waiters = new Set<() => void>();

  private constructor(
    readonly socket: net.Socket,
    private readonly options: TestReceiverOptions,
  ) {
    this.session = new ReceiverSession({ name: options.name ?? 'test receiver', ...(options.secret ? { secret: options.secret } : {}) });
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('close', () => this.changed());
    socket.on('error', () => undefined); // 'close' follows
    socket.on('data', (chunk: Buffer) => {
      try {
        this.decoder.push(
          chunk,
          (message) => {
            if (message.header.type === 'ping') this.pings++;
            this.handle(this.session.receive(message));
          },
          performance.now(),
        );
      } catch (error) {
        if (!(error instanceof ProtocolError)) throw error;
        this.handle(this.session.fail(error));
      }
    });
  }

  static connect(options: TestReceiverOptions): Promise<TestReceiver> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(options.port, options.host ?? '127.0.0.1');
      // Like the real receiver: an ack waits for no Nagle timer.
      socket.setNoDelay(true);
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        const receiver = new TestReceiver(socket, options);
        receiver.write(receiver.session.hello());
        resolve(receiver);
      });
    });
  }

  /**
   * Resolves once `condition()` holds, checked on every message, on close, and every 10 ms (for
   * conditions on the sender's side); rejects after timeoutMs.
   */
  until(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out waiting for ${what}; got ${this.frames.length} frames, end ${JSON.stringify(this.end)}`));
      }, timeoutMs);
      const poll = setInterval(() => check(), 10);
      const finish = () => {
        clearTimeout(timer);
        clearInterval(poll);
        this.waiters.delete(check);
      };
      const check = () => {
        if (!condition()) return;
        finish();
        resolve();
      };
      this.waiters.add(check);
    });
  }

  /** Says bye and waits for the connection to close. */
  async leave(reason = 'test over'): Promise<void> {
    this.handle(this.session.leave(reason));
    await this.closed;
  }

  /** Cuts the connection without a word. */
  async destroy(): Promise<void> {
    this.socket.destroy();
    await this.closed;
  }

  /** Writes a message the session would not (for tests of what the sender refuses). */
  write(header: Header): void {
    if (!this.socket.destroyed) this.socket.write(encodeMessage(header).head);
  }

  private handle(events: ReceiverSessionEvent[]): void {
    for (const event of events) {
      switch (event.type) {
        case 'send':
          if (event.header.type === 'ack') this.acknowledge(event.header);
          else this.write(event.header);
          break;
        case 'stream':
          this.stream = event.stream;
          this.senderName = event.senderName;
          this.rungs = event.rungs;
          break;
        case 'frame':
          this.frames.push({ header: event.header, payload: this.options.keepPayloads === false ? EMPTY : event.payload, rung: event.rung, declaredDrops: event.declaredDrops, undeclaredGap: event.undeclaredGap, at: performance.now() });
          break;
        case 'end':
          this.end = event.end;
          this.decoder.stop();
          // Our last message first (after any delayed acks), then our side of the connection.
          void this.ackChain.then(() => this.socket.end());
          break;
      }
    }
    this.changed();
  }

  private acknowledge(ack: AckHeader): void {
    const frame = this.frames.at(-1)!;
    if (this.options.acks === false) return;
    const rewritten = this.options.rewriteAck ? this.options.rewriteAck(ack, frame) : ack;
    const delay = this.options.ackDelayMs ?? 0;
    if (delay === 0) {
      this.write(rewritten);
      return;
    }
    this.ackChain = this.ackChain.then(
      () =>
        new Promise<void>((resolve) =>
          setTimeout(() => {
            if (!this.end) this.write(rewritten);
            resolve();
          }, delay),
        ),
    );
  }

  private changed(): void {
    for (const check of [...this.waiters]) check();
  }
}
