import {
  DEFAULT_MAX_STREAM_SIZE,
  encodeMessage,
  MessageDecoder,
  ProtocolError,
  ReceiverSession,
  SessionError,
  TooLargeError,
  type FrameHeader,
  type Header,
  type Message,
  type PayloadBuffers,
  type ReceiverSessionEnd,
  type ReceiverSessionEvent,
  type Rung,
  type StreamDescription,
} from '@camstream/protocol';
import { NotASenderError } from './errors';
import { checkPinnedCertificate, describeSocketError, openTransport, quotePrintably, type TransportOptions } from './transport';

export interface SessionOptions extends TransportOptions {
  name: string;
  /** Gives up on a sender that accepts but never answers the hello (default 5 s). */
  handshakeTimeoutMs?: number;
  /** A connection with no bytes at all for this long is dead: the sender pings when idle (default 10 s). */
  idleTimeoutMs?: number;
  /** Shared secret: prove it to the sender and require the sender to prove it back. */
  secret?: string;
  /** The largest stream to accept (default 7680x4320): a larger one is refused in the handshake. */
  maxStreamSize?: StreamSize;
  /** Where large frame payloads land (the receiver's PayloadPool): frames then carry `pooled`. */
  payloadBuffers?: PayloadBuffers;
  /**
   * This sender already spoke camstream without TLS on an earlier connection: a close before its
   * hello then means it is going away (e.g. it said bye and is shutting down), not that it uses TLS.
   */
  spokePlainCamstream?: boolean;
  signal?: AbortSignal;
}

export interface StreamSize {
  width: number;
  height: number;
}

/** What the session found out about a frame besides its header and payload. */
export interface FrameChecks {
  /** The quality rung it is on (0: the stream itself). */
  rung: number;
  /** Frames the sender declared it skipped just before this one. */
  declaredDrops: number;
  /** Frames missing before this one that the sender did not declare (PROTOCOL.md 4.2: must stay 0). */
  undeclaredGap: number;
  /** The payload is a buffer of `payloadBuffers`, to be given back once nothing reads it. */
  pooled: boolean;
}

export interface SessionHandlers {
  /** The handshake is over: `stream` and its rungs (rungs[0] is the stream itself). */
  onStream(stream: StreamDescription, details: { rungs: readonly Rung[]; senderName: string | undefined }): void;
  /** Called for every frame that passed the checks, after its ack went out; throw to end the session with that error. */
  onFrame(header: FrameHeader, payload: Buffer, checks: FrameChecks): void;
}

export type SessionEnd =
  | { kind: 'bye'; reason: string }
  | { kind: 'refused'; code: string; reason: string }
  | { kind: 'failed'; error: Error; connected: boolean }
  | { kind: 'stopped' };

/** Decoder errors that mean the bytes do not even frame messages the camstream way. */
const FRAMING_ERRORS = new Set(['ERR_TOO_LARGE', 'ERR_LENGTH_MISMATCH', 'ERR_BAD_HEADER']);
/** How much of a stranger's first bytes to quote. */
const QUOTED_BYTES = 64;
/**
 * Before its hello a sender may only send a challenge and the hello: small, payload-free
 * messages (each at most the 12 bytes of lengths and a 64 KiB header).
 */
const MAX_BYTES_BEFORE_HELLO = 2 * (12 + 64 * 1024);
/** How long a closing connection may take to flush its last message (bye, error) before it is cut. */
const FLUSH_BEFORE_CLOSE_MS = 500;

/**
 * One connection to a sender, from connect to close: the socket plumbing around ReceiverSession
 * (PROTOCOL.md section 4), which runs the handshake, checks every frame and answers it with an
 * ack. Every read is decoded with its arrival time, so that each ack reports how its frame
 * arrived; whatever the session sends is written at once. Decoding stops at the message that
 * ends the session. Resolves (never rejects) with how it ended, so the caller decides whether to
 * reconnect.
 */
export function runSession(options: SessionOptions, handlers: SessionHandlers): Promise<SessionEnd> {
  return new Promise((resolve) => {
    if (options.signal?.aborted) return resolve({ kind: 'stopped' });
    const session = new ReceiverSession({
      name: options.name,
      maxSize: options.maxStreamSize ?? DEFAULT_MAX_STREAM_SIZE,
      ...(options.secret === undefined ? {} : { secret: options.secret }),
    });
    // Pooled payloads apply once the hello set a frame limit (limitFrameBytes below).
    const decoder = new MessageDecoder({ reusesChunks: !options.tls, ...(options.payloadBuffers ? { payloadBuffers: options.payloadBuffers } : {}) });
    let settled: SessionEnd | undefined;
    let connected = false;
    const handshakeMs = options.handshakeTimeoutMs ?? 5000;
    const handshakeTimer = setTimeout(() => finish({ kind: 'failed', connected, error: new Error(`no hello from the sender within ${handshakeMs} ms`) }), handshakeMs);
    /** The payload of the message being handled, when it is a buffer of payloadBuffers. */
    let pooledPayload: Buffer | undefined;
    /** The start of what the peer sent, kept until its first message is decoded, to quote a stranger's bytes. */
    let firstBytes: Buffer | undefined = Buffer.alloc(0);
    let bytesBeforeFirstMessage = 0;

    const { socket, readyEvent } = openTransport(options, {
      directTarget: () => (settled ? undefined : decoder.payloadTarget()),
      wroteDirectly: (bytes, at) => decode(() => decoder.payloadWritten(bytes, onMessage, at)),
      received: (chunk, at) => {
        if (settled) return;
        if (firstBytes) {
          bytesBeforeFirstMessage += chunk.length;
          if (firstBytes.length < QUOTED_BYTES) firstBytes = Buffer.concat([firstBytes, chunk.subarray(0, QUOTED_BYTES - firstBytes.length)]);
        }
        decode(() => decoder.push(chunk, onMessage, at));
      },
    });
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);

    /** Ends the session: flushes what was written (the last ack, a bye or error) when `graceful`. */
    const finish = (end: SessionEnd, graceful = false) => {
      if (settled) return;
      settled = end;
      // Nothing more is decoded, not even the rest of a read that held a bye or an error (PROTOCOL.md 4, failure).
      decoder.stop();
      clearTimeout(handshakeTimer);
      options.signal?.removeEventListener('abort', onAbort);
      if (graceful && connected && !socket.destroyed) {
        socket.end();
        setTimeout(() => socket.destroy(), FLUSH_BEFORE_CLOSE_MS).unref();
      } else {
        socket.destroy();
      }
      resolve(end);
    };

    const send = (header: Header) => {
      if (!socket.destroyed) socket.write(encodeMessage(header).head);
    };

    /** Carries out what the session asks for. `failure`: the error to report, when it is not the session's own. */
    const act = (events: ReceiverSessionEvent[], failure?: Error) => {
      for (const event of events) {
        switch (event.type) {
          case 'send':
            send(event.header);
            break;
          case 'stream':
            clearTimeout(handshakeTimer);
            // Takes effect for the very next message, even one that arrived in the same read.
            decoder.limitFrameBytes(event.maxFrameBytes);
            handlers.onStream(event.stream, { rungs: event.rungs, senderName: event.senderName });
            break;
          case 'frame':
            handlers.onFrame(event.header, event.payload, {
              rung: event.rung,
              declaredDrops: event.declaredDrops,
              undeclaredGap: event.undeclaredGap,
              pooled: pooledPayload === event.payload,
            });
            break;
          case 'end':
            finish(endOf(event.end, failure), true);
            break;
        }
      }
    };

    /** Fails the session with `error`: the sender is told why (PROTOCOL.md section 4, failure). */
    const failWith = (error: Error) => {
      if (settled) return;
      const wire = error instanceof ProtocolError || error instanceof SessionError ? error : new SessionError('ERR_UNEXPECTED', error.message.slice(0, 1000), { cause: error });
      act(session.fail(wire), error);
    };

    const onMessage = (message: Message): void => {
      if (settled) return;
      firstBytes = undefined;
      pooledPayload = message.pooled ? message.payload : undefined;
      try {
        act(session.receive(message));
      } catch (error) {
        // A handler refused the frame (or the stream): that ends the session with its error.
        failWith(error as Error);
      }
    };

    /**
     * Runs one decoder call (one read); a decoding error fails the session, the end of the session
     * stops decoding. The acks of the frames a read completes go out in one write: each write is a
     * system call here and a wake-up of the sender, which costs more than the ack itself.
     */
    const decode = (step: () => void) => {
      if (settled) return;
      socket.cork();
      try {
        try {
          step();
        } catch (error) {
          // Framing that breaks before the first message: whatever answered is no camstream sender.
          if (!firstBytes || !(error instanceof ProtocolError) || !FRAMING_ERRORS.has(error.code)) throw error;
          const quoted = quotePrintably(firstBytes, bytesBeforeFirstMessage > firstBytes.length);
          // An 8-byte length, then pickle's PROTO opcode (0x80): the tutorial's streamer.
          const tutorial = firstBytes.length > 9 && firstBytes[8] === 0x80 ? " (that is the tutorial's pickle stream: connect with --wire tutorial)" : '';
          throw new NotASenderError(`the peer at ${options.host}:${options.port} is not a camstream sender: it sent ${quoted}${tutorial}`, error);
        }
        if (!session.streaming && decoder.bufferedBytes > MAX_BYTES_BEFORE_HELLO) {
          throw new TooLargeError(`the sender sent more than ${MAX_BYTES_BEFORE_HELLO} bytes before its hello`);
        }
      } catch (error) {
        failWith(error as Error);
      } finally {
        socket.uncork();
      }
    };

    const onAbort = () => {
      if (connected) act(session.leave('receiver stopping'));
      else finish({ kind: 'stopped' });
    };
    options.signal?.addEventListener('abort', onAbort);

    const idleMs = options.idleTimeoutMs ?? 10_000;
    socket.setTimeout(idleMs, () =>
      finish({ kind: 'failed', connected, error: new Error(`no data from the sender for ${idleMs % 1000 === 0 ? `${idleMs / 1000} s` : `${idleMs} ms`}: the connection is dead`) }),
    );

    socket.on(readyEvent, () => {
      const untrusted = checkPinnedCertificate(socket, options);
      if (untrusted) return finish({ kind: 'failed', connected: true, error: untrusted });
      connected = true;
      send(session.hello());
    });
    socket.on('error', (error) => finish({ kind: 'failed', connected, error: describeSocketError(error, options) }));
    socket.on('close', () => {
      const tlsHint = options.tls || options.spokePlainCamstream ? '' : ' (if it uses TLS, connect with --tls)';
      const where = decoder.midMessage ? ' in the middle of a message' : !session.announced ? ` before its hello${tlsHint}` : '';
      finish({ kind: 'failed', connected, error: new Error(`the sender closed the connection${where}`) });
    });
  });
}

function endOf(end: ReceiverSessionEnd, failure: Error | undefined): SessionEnd {
  switch (end.kind) {
    case 'bye':
      return { kind: 'bye', reason: end.reason };
    case 'refused':
      return { kind: 'refused', code: end.code, reason: end.reason };
    case 'failed':
      return { kind: 'failed', connected: true, error: failure ?? end.error };
    case 'left':
      return { kind: 'stopped' };
  }
}
