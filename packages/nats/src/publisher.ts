import {
  type HelloHeader,
  type PreparedFrame,
  PROTOCOL_NAME,
  PROTOCOL_VERSION,
  type StreamDescription,
} from '@camstream/protocol';
import { errors, headers as natsHeaders, type Msg, type MsgHdrs, type Subscription } from '@nats-io/transport-node';
import type { NatsLink } from './connection';
import { newEpoch } from './epoch';
import { NatsTransportError, PayloadTooLargeError } from './errors';
import { signMessage } from './signing';
import { cameraSubject, checkCameraName } from './subjects';
import { frameMessageBytes, HEADER_EPOCH, HEADER_NONCE, HEADER_RECONNECTS, HEADER_SIGNATURE, helloMessageBytes, NONCE_PATTERN } from './wire';

export interface CameraPublisherOptions {
  /** The camera's name on the bus (camstream.NAME.*): 1 to 64 letters, digits, '-' or '_'. */
  camera: string;
  /** What the frames will be: the `stream` of the announcement. */
  stream: StreamDescription;
  /** The sender's name in the announcement (its hello's `name`). */
  senderName?: string;
  /** Shared secret: sign every message (receivers with the secret refuse anything else). */
  secret?: string;
  /** How often the announcement is repeated (default 2000 ms). */
  announceEveryMs?: number;
  /**
   * Bytes published but not yet confirmed by the server (a PING answered after them) above which
   * frames are dropped instead of queued in the client (default 2 MiB). A frame always goes when
   * nothing is unconfirmed.
   */
  maxUnconfirmedBytes?: number;
  /** For tests: the epoch to use (default: newEpoch()). */
  epoch?: string;
}

export interface PublisherStats {
  camera: string;
  epoch: string;
  /** Frames published to the subject (each once, whatever the number of subscribers). */
  framesPublished: number;
  /** Frames not published (disconnected, too much unconfirmed, sequence numbers skipped by the caller): declared in `dropped`. */
  framesDropped: number;
  /** Bytes of frame messages published. */
  frameBytes: number;
  /** Announcements published on the hello subject. */
  announcements: number;
  /** Describe requests answered. */
  describeReplies: number;
  /** Bytes published and not yet confirmed by the server. */
  unconfirmedBytes: number;
  /** Reconnects of this publisher's connection since it started. */
  reconnects: number;
}

/** Messages are headers and body together under max_payload; this is room for our NATS headers. */
const NATS_HEADER_ALLOWANCE = 512;

/**
 * Publishes one camera's frames to NATS (PROTOCOL.md, "Over NATS"): each frame once to
 * camstream.NAME.frames, the announcement to camstream.NAME.hello at start, every few seconds and
 * after each reconnect, and answers camstream.NAME.describe requests. Frames it cannot publish
 * (while disconnected, or while the server has not confirmed maxUnconfirmedBytes) are dropped
 * and declared in the next frame's `dropped`, as a TCP sender declares the frames it skips.
 */
export class CameraPublisher {
  readonly camera: string;
  readonly epoch: string;
  private readonly frameSubject: string;
  private readonly helloSubject: string;
  private readonly describeSubject: string;
  private readonly helloBytes: Buffer;
  private readonly maxUnconfirmedBytes: number;
  private readonly reconnectsAtStart: number;
  private lastOfferedSeq: number | undefined;
  private dropped = 0;
  private framesPublished = 0;
  private frameBytes = 0;
  private announcements = 0;
  private describeReplies = 0;
  private unconfirmed = 0;
  private isClosed = false;
  private readonly timer: NodeJS.Timeout;
  private readonly describeSubscription: Subscription;
  private readonly stopListening: () => void;

  private constructor(
    private readonly link: NatsLink,
    private readonly options: CameraPublisherOptions,
  ) {
    this.camera = checkCameraName(options.camera);
    this.epoch = options.epoch ?? newEpoch();
    this.frameSubject = cameraSubject(this.camera, 'frames');
    this.helloSubject = cameraSubject(this.camera, 'hello');
    this.describeSubject = cameraSubject(this.camera, 'describe');
    // One stream per camera: a sender's lower rungs (section 4.4) are for its TCP receivers.
    const { rungs: _rungs, ...stream } = options.stream;
    const hello: HelloHeader = {
      type: 'hello',
      protocol: PROTOCOL_NAME,
      version: PROTOCOL_VERSION,
      role: 'sender',
      ...(options.senderName === undefined ? {} : { name: options.senderName }),
      stream,
    };
    this.helloBytes = helloMessageBytes(hello);
    this.maxUnconfirmedBytes = options.maxUnconfirmedBytes ?? 2 * 1024 * 1024;
    this.reconnectsAtStart = link.reconnects;
    this.checkStreamFits();
    this.describeSubscription = link.connection.subscribe(this.describeSubject, {
      callback: (error, msg) => {
        if (!error) this.answerDescribe(msg);
      },
    });
    // Receivers that were watching learn at once that the stream is back, and what it is.
    this.stopListening = link.onEvent((event) => {
      if (event.type === 'reconnected') this.announce();
    });
    this.timer = setInterval(() => this.announce(), options.announceEveryMs ?? 2000);
    this.timer.unref();
  }

  /**
   * Starts publishing camera `options.camera` on `link`: announces the stream and answers describe
   * requests. Throws CameraNameError, ProtocolError for a bad stream description, and
   * PayloadTooLargeError when the stream's raw frames cannot fit the server's max_payload.
   */
  static async start(link: NatsLink, options: CameraPublisherOptions): Promise<CameraPublisher> {
    const publisher = new CameraPublisher(link, options);
    publisher.announce();
    // The describe subscription is known to the server once this returns: no request is missed.
    await link.connection.flush();
    return publisher;
  }

  /** The Camstream-Reconnects value: reconnects since this publisher started. */
  private get reconnects(): number {
    return this.link.reconnects - this.reconnectsAtStart;
  }

  get stats(): PublisherStats {
    return {
      camera: this.camera,
      epoch: this.epoch,
      framesPublished: this.framesPublished,
      framesDropped: this.dropped,
      frameBytes: this.frameBytes,
      announcements: this.announcements,
      describeReplies: this.describeReplies,
      unconfirmedBytes: this.unconfirmed,
      reconnects: this.reconnects,
    };
  }

  /**
   * Publishes one frame (of rung 0), or drops it (declared in the next frame's `dropped`) when the connection
   * is down or the server is behind by maxUnconfirmedBytes. Sequence numbers must increase; numbers
   * the caller skipped are declared as drops too. Throws PayloadTooLargeError for a frame over the
   * server's max_payload (it is dropped), NatsTransportError ERR_NATS_CLOSED once the connection is
   * closed for good or this publisher was closed.
   */
  publishFrame(frame: PreparedFrame): 'published' | 'dropped' {
    this.checkOpen();
    const { seq, rung } = frame.header;
    if (rung) throw new RangeError(`frame ${seq} is on rung ${rung}: NATS carries each camera's stream itself (rung 0) only`);
    if (this.lastOfferedSeq !== undefined) {
      if (seq <= this.lastOfferedSeq) throw new RangeError(`frame ${seq} offered after frame ${this.lastOfferedSeq}: sequence numbers must increase`);
      this.dropped += seq - this.lastOfferedSeq - 1;
    }
    this.lastOfferedSeq = seq;
    // messageBytes is the size with a one-digit drop count: close enough for this bound.
    if (!this.link.connected || (this.unconfirmed > 0 && this.unconfirmed + frame.messageBytes > this.maxUnconfirmedBytes)) {
      this.dropped++;
      return 'dropped';
    }
    const bytes = frameMessageBytes(frame, this.dropped);
    const maxPayload = this.link.maxPayload;
    if (bytes.length + NATS_HEADER_ALLOWANCE > maxPayload) {
      this.dropped++;
      throw this.tooLarge(`frame ${seq} is a ${bytes.length}-byte message`, bytes.length, maxPayload);
    }
    this.publish(this.frameSubject, bytes, '');
    this.framesPublished++;
    this.frameBytes += bytes.length;
    this.unconfirmed += bytes.length;
    const settle = () => {
      this.unconfirmed -= bytes.length;
    };
    // The server answers a PING after everything sent before it: then these bytes are through.
    this.link.connection.flush().then(settle, settle);
    return 'published';
  }

  /** Stops announcing and answering; does not close the link (other publishers may share it). */
  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    clearInterval(this.timer);
    this.stopListening();
    if (!this.link.done) {
      this.describeSubscription.unsubscribe();
      await this.link.connection.flush().catch(() => undefined);
    }
  }

  private checkOpen(): void {
    if (this.isClosed) throw new NatsTransportError('ERR_NATS_CLOSED', `the publisher of camera ${this.camera} is closed`);
    if (this.link.done) {
      const why = this.link.failure ? `: ${this.link.failure.message}` : '';
      throw new NatsTransportError('ERR_NATS_CLOSED', `the NATS connection of camera ${this.camera} is closed${why}`, { cause: this.link.failure });
    }
  }

  /** Raw frames have a known size: refuse at start a stream whose frames cannot fit. */
  private checkStreamFits(): void {
    const { stream } = this.options;
    if (stream.encoding !== 'raw-bgr') return;
    const bytes = stream.width * stream.height * 3 + this.helloBytes.length;
    const maxPayload = this.link.maxPayload;
    if (bytes + NATS_HEADER_ALLOWANCE > maxPayload) {
      throw this.tooLarge(`raw ${stream.width}x${stream.height} frames are ${stream.width * stream.height * 3} bytes each`, bytes, maxPayload);
    }
  }

  private tooLarge(what: string, bytes: number, maxPayload: number): PayloadTooLargeError {
    const needed = Math.ceil((bytes + NATS_HEADER_ALLOWANCE) / (1024 * 1024));
    return new PayloadTooLargeError(
      `${what}, more than NATS at ${this.link.server} accepts (max_payload ${maxPayload} bytes): raise max_payload in the nats-server configuration (to at least ${needed}MB; at most 64MB) or send a compressed encoding (jpeg)`,
      bytes,
      maxPayload,
    );
  }

  /** Publishes the announcement, if connected (from timers and events: never throws). */
  private announce(): void {
    if (this.isClosed || this.link.done || !this.link.connected) return;
    try {
      this.publish(this.helloSubject, this.helloBytes, '');
      this.announcements++;
    } catch {
      // Closed in the meantime: publishFrame reports that to the caller.
    }
  }

  private answerDescribe(request: Msg): void {
    if (this.isClosed || !request.reply) return;
    const nonce = request.headers?.get(HEADER_NONCE) ?? '';
    const reply = this.messageHeaders(this.describeSubject, this.helloBytes, NONCE_PATTERN.test(nonce) ? nonce : '');
    request.respond(this.helloBytes, { headers: reply });
    this.describeReplies++;
  }

  private messageHeaders(subject: string, message: Uint8Array, nonce: string): MsgHdrs {
    const reconnects = String(this.reconnects);
    const headers = natsHeaders();
    headers.set(HEADER_EPOCH, this.epoch);
    headers.set(HEADER_RECONNECTS, reconnects);
    if (this.options.secret !== undefined) {
      headers.set(HEADER_SIGNATURE, signMessage(this.options.secret, { subject, epoch: this.epoch, reconnects, nonce, message }));
    }
    return headers;
  }

  private publish(subject: string, message: Uint8Array, nonce: string): void {
    try {
      this.link.connection.publish(subject, message, { headers: this.messageHeaders(subject, message, nonce) });
    } catch (error) {
      if (error instanceof errors.ClosedConnectionError) {
        throw new NatsTransportError('ERR_NATS_CLOSED', `the NATS connection of camera ${this.camera} is closed`, { cause: error });
      }
      if (error instanceof errors.InvalidArgumentError && /max_payload/.test(error.message)) {
        throw this.tooLarge(`a ${message.length}-byte message`, message.length, this.link.maxPayload);
      }
      throw error;
    }
  }
}
