import { newNonce, proofsMatch, receiverProof, senderProof } from '../auth';
import { PROTOCOL_NAME, PROTOCOL_VERSION } from '../constants';
import { ProtocolError } from '../errors';
import { type AckReport, FlowWindow, type FlowWindowOptions, UnexpectedAckError } from '../flow-window';
import type { Header, StreamDescription } from '../schema';
import { describeHeader } from './describe';
import { SessionError } from './session-error';

export interface SenderSessionOptions {
  /** What this sender streams: sent in its hello. */
  stream: StreamDescription;
  /** The sender's name, sent in its hello. */
  name?: string;
  /** Receivers must prove they know this secret before the stream is described to them. */
  secret?: string;
  /** When the connection was accepted (ms, any monotonic clock; the same clock for every call). */
  now: number;
  /** The whole handshake must be over this long after `now` (default 5000 ms). */
  handshakeTimeoutMs?: number;
  /** A ping goes out when nothing else went to the receiver for this long (default 2000 ms). */
  pingIntervalMs?: number;
  /** A receiver that acknowledged nothing for this long while frames wait for it is cut off (default 30 s). */
  stallTimeoutMs?: number;
  /** Wall clock for ping times (default Date.now). */
  wallClock?: () => number;
  flow?: FlowWindowOptions;
  /** For tests: the sender's authentication nonce (default: 32 fresh random bytes). */
  nonce?: string;
}

export type SenderSessionEvent =
  /** Write this (payload-free) message to the receiver. */
  | { type: 'send'; header: Header }
  /** The handshake is over: the receiver may take a viewer slot and get frames. */
  | { type: 'joined'; receiverName: string | undefined }
  /** An acknowledgement arrived: the window may have room for the waiting frame. */
  | { type: 'acked'; seq: number }
  /** The session is over; close the connection (after writing any 'send' before this event). */
  | { type: 'closed'; end: SenderSessionEnd };

export type SenderSessionEnd =
  /** The receiver said bye. */
  | { kind: 'bye'; reason: string }
  /** The receiver gave up with an error message. */
  | { kind: 'peer-error'; code: string; reason: string }
  /** This side refused the receiver; the error went out in a 'send' event first. */
  | { kind: 'refused'; error: ProtocolError | SessionError }
  /** This side left (bye sent when the receiver was streaming). */
  | { kind: 'left'; reason: string };

/** What the plumbing may read of a session's flow-control window (it changes only through the session). */
export type SenderWindowView = Pick<
  FlowWindow,
  | 'windowBytes'
  | 'inFlightBytes'
  | 'inFlightFrames'
  | 'capacityBytesPerSecond'
  | 'sustainedCapacityBytesPerSecond'
  | 'measuredCapacityBytesPerSecond'
  | 'deliveredBytesPerSecond'
  | 'roundTripMs'
  | 'ackedBytes'
  | 'canSend'
  | 'oldestUnackedMs'
>;

type State = 'hello' | 'auth' | 'streaming' | 'closed';

/**
 * The sender's side of one connection (PROTOCOL.md section 4), free of sockets and timers: feed it
 * the receiver's messages and the time, get back messages to send and events. It runs the
 * handshake (hello, optional challenge and auth), then counts what each frame needs in its header
 * (the drops declared to this receiver) and keeps the flow-control window. The plumbing around it
 * (stream-server) only moves bytes.
 */
export class SenderSession {
  private state: State = 'hello';
  private readonly senderNonce: string;
  private receiverNonce: string | undefined;
  private peerName: string | undefined;
  private readonly deadline: number;
  private lastSentAt: number;
  private droppedCount = 0;
  private sentCount = 0;
  private readonly flow: FlowWindow;
  private readonly options: SenderSessionOptions;

  constructor(options: SenderSessionOptions) {
    this.options = options;
    this.senderNonce = options.nonce ?? newNonce();
    this.deadline = options.now + (options.handshakeTimeoutMs ?? 5000);
    this.lastSentAt = options.now;
    this.flow = new FlowWindow(options.flow);
  }

  get streaming(): boolean {
    return this.state === 'streaming';
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  /** The name the receiver gave in its hello, if any. */
  get receiverName(): string | undefined {
    return this.peerName;
  }

  /** Frames skipped for this receiver so far: the `dropped` of its next frame header. */
  get dropped(): number {
    return this.droppedCount;
  }

  get sent(): number {
    return this.sentCount;
  }

  /**
   * The flow-control window, read-only: figures for logs and adaptation, and what an outlet asks
   * before it writes a frame (canSend, oldestUnackedMs). Frames sent and acks go through the session.
   */
  get window(): SenderWindowView {
    return this.flow;
  }

  /** Handles one message from the receiver. */
  receive(header: Header, now: number): SenderSessionEvent[] {
    if (this.state === 'closed') return [];
    if (header.type === 'error') {
      // Never answer an error with an error (section 4, failure).
      return this.close({ kind: 'peer-error', code: header.code, reason: header.reason });
    }
    switch (this.state) {
      case 'hello':
        return this.onHello(header);
      case 'auth':
        return this.onAuth(header);
      case 'streaming':
        return this.onStreaming(header, now);
    }
  }

  /** The receiver's bytes could not be decoded: refuse it with that error. */
  fail(error: ProtocolError | SessionError): SenderSessionEvent[] {
    if (this.state === 'closed') return [];
    return this.refuse(error);
  }

  /** Deadlines: the handshake, a receiver that stopped acknowledging, and pings when idle. */
  tick(now: number): SenderSessionEvent[] {
    if (this.state === 'closed') return [];
    if (this.state !== 'streaming') {
      if (now < this.deadline) return [];
      return this.refuse(new SessionError('ERR_HANDSHAKE_TIMEOUT', `the handshake did not finish within ${this.options.handshakeTimeoutMs ?? 5000} ms`));
    }
    const stallLimit = this.options.stallTimeoutMs ?? 30_000;
    const waited = this.flow.oldestUnackedMs(now);
    if (waited > stallLimit) {
      return this.refuse(new SessionError('ERR_STALLED', `no acknowledgement for ${describeMs(waited)}: the receiver stopped reading`));
    }
    if (now - this.lastSentAt >= (this.options.pingIntervalMs ?? 2000)) {
      this.lastSentAt = now;
      return [{ type: 'send', header: { type: 'ping', time: (this.options.wallClock ?? Date.now)() } }];
    }
    return [];
  }

  /** Whether a frame of `bytes` (the whole message) may be sent now, or must wait for acks. */
  canSend(bytes: number): boolean {
    return this.state === 'streaming' && this.flow.canSend(bytes);
  }

  /** Records a frame as written; returns the `dropped` value its header must carry. */
  frameSent(seq: number, bytes: number, now: number): number {
    if (this.state !== 'streaming') throw new Error(`frame ${seq} sent to a session that is ${this.state}`);
    this.flow.sent(seq, bytes, now);
    this.sentCount++;
    this.lastSentAt = now;
    return this.droppedCount;
  }

  /** A frame that will never be sent to this receiver (a newer one replaced it). */
  frameDropped(): void {
    this.droppedCount++;
  }

  /** This side ends the session (shutdown): a streaming receiver is told bye. */
  leave(reason: string): SenderSessionEvent[] {
    if (this.state === 'closed') return [];
    const bye: SenderSessionEvent[] = this.state === 'streaming' ? [{ type: 'send', header: { type: 'bye', reason } }] : [];
    return [...bye, ...this.close({ kind: 'left', reason })];
  }

  private onHello(header: Header): SenderSessionEvent[] {
    if (header.type !== 'hello' || header.role !== 'receiver') {
      return this.refuse(new SessionError('ERR_HANDSHAKE', `expected a hello from a receiver, got ${describeHeader(header)}`));
    }
    this.peerName = header.name;
    if (this.options.secret === undefined) return this.welcome();
    if (!header.nonce) {
      return this.refuse(new SessionError('ERR_AUTH', 'this sender requires a shared secret, and the receiver offered none (set --secret or CAMSTREAM_SECRET)'));
    }
    this.receiverNonce = header.nonce;
    this.state = 'auth';
    return [{ type: 'send', header: { type: 'challenge', method: 'hmac-sha256', nonce: this.senderNonce } }];
  }

  private onAuth(header: Header): SenderSessionEvent[] {
    const secret = this.options.secret!;
    const receiverNonce = this.receiverNonce!;
    if (header.type !== 'auth') {
      return this.refuse(new SessionError('ERR_AUTH', `expected the answer to the challenge, got ${describeHeader(header)}`));
    }
    if (!proofsMatch(receiverProof(secret, this.senderNonce, receiverNonce), header.mac)) {
      return this.refuse(new SessionError('ERR_AUTH', 'authentication failed: wrong shared secret'));
    }
    return this.welcome(senderProof(secret, this.senderNonce, receiverNonce));
  }

  private onStreaming(header: Header, now: number): SenderSessionEvent[] {
    switch (header.type) {
      case 'ack':
        try {
          this.flow.acked(header satisfies AckReport, now);
        } catch (error) {
          if (error instanceof UnexpectedAckError) return this.refuse(new SessionError('ERR_UNEXPECTED', error.message));
          throw error;
        }
        return [{ type: 'acked', seq: header.seq }];
      case 'bye':
        return this.close({ kind: 'bye', reason: header.reason });
      default:
        return this.refuse(new SessionError('ERR_UNEXPECTED', `unexpected ${describeHeader(header)} after the handshake`));
    }
  }

  private welcome(proof?: string): SenderSessionEvent[] {
    this.state = 'streaming';
    const hello: Header = {
      type: 'hello',
      protocol: PROTOCOL_NAME,
      version: PROTOCOL_VERSION,
      role: 'sender',
      ...(this.options.name === undefined ? {} : { name: this.options.name }),
      stream: this.options.stream,
      ...(proof ? { proof } : {}),
    };
    return [{ type: 'send', header: hello }, { type: 'joined', receiverName: this.peerName }];
  }

  private refuse(error: ProtocolError | SessionError): SenderSessionEvent[] {
    return [{ type: 'send', header: { type: 'error', code: error.code, reason: error.message } }, ...this.close({ kind: 'refused', error })];
  }

  private close(end: SenderSessionEnd): SenderSessionEvent[] {
    this.state = 'closed';
    return [{ type: 'closed', end }];
  }
}

function describeMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}
