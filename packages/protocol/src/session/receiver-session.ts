import { newNonce, proofsMatch, receiverProof, senderProof } from '../auth';
import { PROTOCOL_NAME, PROTOCOL_VERSION } from '../constants';
import type { Message } from '../decoder';
import type { ProtocolError } from '../errors';
import type { FrameHeader, Header, StreamDescription } from '../schema';
import { describeHeader } from './describe';
import { SequenceCheck } from './sequence-check';
import { SessionError } from './session-error';
import { checkDecodableStart, checkFrameAgainstStream, type Rung, streamRungs } from './stream-check';

export interface ReceiverSessionOptions {
  /** This receiver's name, sent in its hello. */
  name: string;
  /** Shared secret: prove it to the sender and require the sender to prove it back. */
  secret?: string;
  /** Streams larger than this (either side) are refused in the handshake. Default 7680x4320. */
  maxSize?: { width: number; height: number };
  /** For tests: the receiver's authentication nonce (default: 32 fresh random bytes). */
  nonce?: string;
}

export const DEFAULT_MAX_STREAM_SIZE = { width: 7680, height: 4320 } as const;

export type { Rung } from './stream-check';

export type ReceiverSessionEvent =
  /** Write this (payload-free) message to the sender. */
  | { type: 'send'; header: Header }
  /** The handshake is over; frames follow. `maxFrameBytes`: refuse larger frame payloads from now on. */
  | { type: 'stream'; stream: StreamDescription; senderName: string | undefined; rungs: readonly Rung[]; maxFrameBytes: number }
  /** A checked frame: its number fits the sequence, its size the announced stream. */
  | { type: 'frame'; header: FrameHeader; payload: Buffer; rung: number; declaredDrops: number; undeclaredGap: number }
  /** The session is over; close the connection (after writing any 'send' before this event). */
  | { type: 'end'; end: ReceiverSessionEnd };

export type ReceiverSessionEnd =
  /** The sender said bye. */
  | { kind: 'bye'; reason: string }
  /** The sender sent an error: it refused this receiver, or gave up on it. */
  | { kind: 'refused'; code: string; reason: string }
  /** This side found the sender's bytes or conduct wrong; the error went out in a 'send' event first. */
  | { kind: 'failed'; error: ProtocolError | SessionError }
  /** This side left (bye sent). */
  | { kind: 'left'; reason: string };

type State = 'hello' | 'streaming' | 'closed';

/**
 * The receiver's side of one connection (PROTOCOL.md section 4), free of sockets and timers: its
 * hello, the answer to a challenge, the checks on the sender's hello (proof, size limit), then for
 * every frame the checks against the announced stream and the sequence, and the acknowledgement
 * that drives the sender's flow-control window.
 */
export class ReceiverSession {
  private state: State = 'hello';
  private readonly receiverNonce: string;
  private senderNonce: string | undefined;
  private stream: StreamDescription | undefined;
  private rungs: Rung[] = [];
  private readonly sequence = new SequenceCheck();
  /** The rung of the last frame received: an h264 frame on another one must be a keyframe. */
  private lastRung: number | undefined;

  constructor(private readonly options: ReceiverSessionOptions) {
    this.receiverNonce = options.nonce ?? newNonce();
  }

  get streaming(): boolean {
    return this.state === 'streaming';
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  /** The stream the sender announced (after the handshake). */
  get announced(): StreamDescription | undefined {
    return this.stream;
  }

  /** The first message: send it as soon as the connection is up. */
  hello(): Header {
    return {
      type: 'hello',
      protocol: PROTOCOL_NAME,
      version: PROTOCOL_VERSION,
      role: 'receiver',
      name: this.options.name,
      ...(this.options.secret === undefined ? {} : { nonce: this.receiverNonce }),
    };
  }

  /** Handles one message from the sender. `message.arrival` (the decoder's timing) goes into the ack. */
  receive(message: Message): ReceiverSessionEvent[] {
    if (this.state === 'closed') return [];
    const { header } = message;
    if (header.type === 'error') return this.close({ kind: 'refused', code: header.code, reason: header.reason });
    try {
      return this.state === 'hello' ? this.onHandshake(header) : this.onStreaming(message);
    } catch (error) {
      if (error instanceof SessionError) return this.fail(error);
      throw error;
    }
  }

  /** The sender's bytes could not be decoded, or the plumbing found it wrong: tell it why and close. */
  fail(error: ProtocolError | SessionError): ReceiverSessionEvent[] {
    if (this.state === 'closed') return [];
    return [{ type: 'send', header: { type: 'error', code: error.code, reason: error.message } }, ...this.close({ kind: 'failed', error })];
  }

  /** This side leaves (stopping): bye, then close. */
  leave(reason: string): ReceiverSessionEvent[] {
    if (this.state === 'closed') return [];
    return [{ type: 'send', header: { type: 'bye', reason } }, ...this.close({ kind: 'left', reason })];
  }

  private onHandshake(header: Header): ReceiverSessionEvent[] {
    const { secret } = this.options;
    if (header.type === 'challenge') {
      if (secret === undefined) throw new SessionError('ERR_AUTH', 'the sender requires a shared secret (--secret or CAMSTREAM_SECRET)');
      if (this.senderNonce !== undefined) throw new SessionError('ERR_AUTH', 'the sender sent a second challenge');
      this.senderNonce = header.nonce;
      return [{ type: 'send', header: { type: 'auth', mac: receiverProof(secret, header.nonce, this.receiverNonce) } }];
    }
    if (header.type !== 'hello' || header.role !== 'sender') {
      throw new SessionError('ERR_HANDSHAKE', `expected a hello from a sender, got ${describeHeader(header)}`);
    }
    if (secret !== undefined) {
      if (this.senderNonce === undefined || !header.proof) {
        throw new SessionError('ERR_AUTH', 'the sender did not ask for the shared secret: refusing a sender that cannot prove it knows it');
      }
      if (!proofsMatch(senderProof(secret, this.senderNonce, this.receiverNonce), header.proof)) {
        throw new SessionError('ERR_AUTH', "the sender's proof of the shared secret is wrong: not the expected sender");
      }
    }
    const { stream } = header;
    const max = this.options.maxSize ?? DEFAULT_MAX_STREAM_SIZE;
    if (stream.width > max.width || stream.height > max.height) {
      throw new SessionError(
        'ERR_STREAM_TOO_LARGE',
        `the sender announced a ${stream.width}x${stream.height} stream, larger than this receiver accepts (${max.width}x${max.height}; see --max-size)`,
      );
    }
    this.stream = stream;
    this.rungs = streamRungs(stream);
    this.state = 'streaming';
    return [{ type: 'stream', stream, senderName: header.name, rungs: this.rungs, maxFrameBytes: frameLimit(stream) }];
  }

  private onStreaming(message: Message): ReceiverSessionEvent[] {
    const { header, payload } = message;
    switch (header.type) {
      case 'frame': {
        const rung = checkFrameAgainstStream(header, this.stream!, this.rungs);
        if (this.stream!.encoding === 'h264') checkDecodableStart(header, rung, this.lastRung);
        const step = this.sequence.accept(header);
        this.lastRung = rung;
        const arrival = message.arrival ?? { spanMs: 0, spanBytes: 0 };
        return [
          { type: 'send', header: { type: 'ack', seq: header.seq, spanMs: round3(arrival.spanMs), spanBytes: arrival.spanBytes } },
          { type: 'frame', header, payload, rung, ...step },
        ];
      }
      case 'ping':
        return [];
      case 'bye':
        return this.close({ kind: 'bye', reason: header.reason });
      default:
        throw new SessionError('ERR_UNEXPECTED', `unexpected ${describeHeader(header)} from the sender`);
    }
  }

  private close(end: ReceiverSessionEnd): ReceiverSessionEvent[] {
    this.state = 'closed';
    return [{ type: 'end', end }];
  }
}

/** Compressed frames may exceed the raw size a little (PNG, JPEG of noise), never by this much. */
export function frameLimit(stream: StreamDescription): number {
  const raw = stream.width * stream.height * 3;
  return stream.encoding === 'raw-bgr' ? raw : 2 * raw + 64 * 1024;
}

function round3(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
