import { constants as bufferConstants } from 'node:buffer';
import { crc32 } from './checksum';
import {
  DEFAULT_MAX_HEADER_BYTES,
  DEFAULT_MAX_MESSAGE_BYTES,
  HEADER_LENGTH_BYTES,
  LENGTH_PREFIX_BYTES,
} from './constants';
import {
  BadHeaderError,
  ChecksumError,
  LengthMismatchError,
  ProtocolError,
  TooLargeError,
} from './errors';
import { checkPayloadLength, type Header, parseHeader } from './schema';

export interface Message {
  header: Header;
  payload: Buffer;
  /**
   * The payload is a buffer taken from the decoder's `payloadBuffers`: the consumer owns it and
   * gives it back once nothing reads it any more (or drops it, and the pool allocates anew).
   */
  pooled?: boolean;
  /**
   * How the message arrived, when push() was given arrival times: from the push that brought its
   * first byte to the push that completed it. A receiver reports this in its acks (flow control).
   */
  arrival?: Arrival;
}

export interface Arrival {
  /** Milliseconds between the push holding the message's first byte and the push completing it. */
  spanMs: number;
  /** Bytes of the message (all 8 + N of them) that came after that first push. */
  spanBytes: number;
}

export interface DecoderOptions {
  /** Largest message body (N, the bytes after the 8-byte prefix) accepted. Default 64 MiB. */
  maxMessageBytes?: number;
  /** Largest JSON header accepted. Default 64 KiB. */
  maxHeaderBytes?: number;
  /** Check each frame payload against its header's CRC-32. Default true. */
  verifyChecksum?: boolean;
  /** Optional extra limit on frame payloads, e.g. the size the stream announced. */
  maxFrameBytes?: number;
  /**
   * Where large frame payloads land: a destination taken from here as soon as the frame's header
   * is read, filled as the bytes arrive (and, through payloadTarget(), read into directly), instead
   * of a fresh Buffer per frame, whose pages cost a fault each (about 9 us here: milliseconds per
   * raw 1080p frame). Used only under a frame limit (maxFrameBytes or limitFrameBytes), so that the
   * destination's size is one the reader accepted before any payload byte arrives.
   */
  payloadBuffers?: PayloadBuffers;
  /** Frame payloads of at least this many bytes go to payloadBuffers (default 64 KiB). */
  pooledPayloadMinBytes?: number;
  /**
   * The caller reuses the memory of every pushed chunk once push() returns (a socket read buffer):
   * the decoder then copies whatever it must keep, and never returns views of a chunk.
   */
  reusesChunks?: boolean;
}

/** A pool of payload destinations (e.g. the receiver's PayloadPool). */
export interface PayloadBuffers {
  /** A buffer of exactly `bytes` bytes that nothing else reads or writes until it is given back. */
  take(bytes: number): Buffer;
  /** Takes back a buffer from take(): its bytes may be overwritten from now on. */
  give(buffer: Buffer): void;
}

/** What the decoder waits for next. */
type State = 'messageLength' | 'headerLength' | 'header' | 'payload' | 'pooledPayload';

const TWO_POW_32 = 2 ** 32;
// Refuses a BOM too (ignoreBOM keeps it, and JSON.parse then rejects it).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Incremental decoder: push socket chunks in, get whole messages out.
 *
 * Bytes are kept as the list of chunks they arrived in. A field that lies inside one chunk is
 * returned as a view of it; one that spans chunks is copied exactly once into a Buffer of its own.
 * Every length is checked against its limit before anything is allocated for it.
 */
export class MessageDecoder {
  private readonly maxMessageBytes: number;
  private readonly maxHeaderBytes: number;
  private maxFrameBytes: number;
  private readonly verifyChecksum: boolean;

  /**
   * Chunks as they arrived. Consumed ones are cleared and skipped by index rather than shifted
   * off: shift() on a long array (a big frame in many small reads) can cost O(length) each time.
   */
  private readonly chunks: (Buffer | undefined)[] = [];
  /** When each chunk arrived (push's `receivedAt`), parallel to `chunks`. */
  private readonly chunkTimes: number[] = [];
  /** Arrival of the message being read: its first chunk's time and how many of its bytes that chunk held. */
  private messageFirstAt: number | undefined;
  private messageBytesInFirstChunk = 0;
  /** Arrival time of the chunk the last consumed byte came from. */
  private lastConsumedAt = NaN;
  /** Index of the chunk being read. */
  private first = 0;
  /** Bytes of that chunk already consumed. */
  private offset = 0;
  private buffered = 0;

  private state: State = 'messageLength';
  private messageLength = 0;
  private headerLength = 0;
  private payloadLength = 0;
  private header: Header | undefined;
  private error: ProtocolError | undefined;
  private isStopped = false;

  private readonly payloadBuffers: PayloadBuffers | undefined;
  private readonly pooledPayloadMinBytes: number;
  private readonly reusesChunks: boolean;
  private frameLimitSet: boolean;
  /** The pooled destination of the payload being read ('pooledPayload'), its filled bytes and their CRC. */
  private target: Buffer | undefined;
  private targetFilled = 0;
  private targetCrc = 0;

  constructor(options: DecoderOptions = {}) {
    this.maxMessageBytes = limitOption('maxMessageBytes', options.maxMessageBytes, DEFAULT_MAX_MESSAGE_BYTES);
    if (this.maxMessageBytes > bufferConstants.MAX_LENGTH) {
      throw new RangeError(`maxMessageBytes ${this.maxMessageBytes} is over the largest Buffer Node can allocate`);
    }
    this.maxHeaderBytes = limitOption('maxHeaderBytes', options.maxHeaderBytes, DEFAULT_MAX_HEADER_BYTES);
    this.maxFrameBytes = limitOption('maxFrameBytes', options.maxFrameBytes, Number.MAX_SAFE_INTEGER);
    this.verifyChecksum = options.verifyChecksum ?? true;
    this.payloadBuffers = options.payloadBuffers;
    this.pooledPayloadMinBytes = limitOption('pooledPayloadMinBytes', options.pooledPayloadMinBytes, 64 * 1024);
    this.reusesChunks = options.reusesChunks ?? false;
    this.frameLimitSet = options.maxFrameBytes !== undefined;
  }
  /**
   * Tightens the frame payload limit once the stream is known (a receiver learns it from the
   * sender's hello): larger frames are refused from their header, before any payload is held.
   */
  limitFrameBytes(maxFrameBytes: number): void {
    this.maxFrameBytes = limitOption('maxFrameBytes', maxFrameBytes, Number.MAX_SAFE_INTEGER);
    this.frameLimitSet = true;
  }

  /**
   * Feeds bytes; returns the messages completed by them (possibly none). Throws ProtocolError on
   * bad input; after an error every later push throws the same error (the decoder stays failed).
   * Messages completed earlier in the failing push are dropped with it: the stream is unusable.
   *
   * With `onMessage`, each message is handed over as soon as it is complete, before the next one
   * is read (and push returns none): a limit set in the callback, e.g. limitFrameBytes after a
   * hello, then applies to the very next message even when both arrived in one chunk. A callback
   * that rejects the message calls stop() (or throws: the exception leaves push and stops the
   * decoder too), and the bytes after that message are never decoded.
   *
   * `receivedAt` (ms, any clock) is when the chunk arrived; with it, messages carry `arrival`.
   */
  push(chunk: Buffer, onMessage?: (message: Message) => void, receivedAt?: number): Message[] {
    if (this.error) throw this.error;
    const messages: Message[] = [];
    if (this.isStopped) return messages;
    const deliver = onMessage ? this.guarded(onMessage) : (message: Message) => void messages.push(message);
    if (chunk.length === 0) return messages;
    // Drop the cleared slots once they are half the list: amortised O(1) per chunk.
    if (this.first > 0 && this.first * 2 >= this.chunks.length) {
      this.chunks.splice(0, this.first);
      this.chunkTimes.splice(0, this.first);
      this.first = 0;
    }
    this.chunks.push(chunk);
    this.chunkTimes.push(receivedAt ?? NaN);
    this.buffered += chunk.length;
    try {
      this.decodeBuffered(deliver);
    } catch (err) {
      // An exception from onMessage has stopped the decoder already: it is not a decoding error.
      if (err instanceof ProtocolError && !this.isStopped) this.fail(err);
      throw err;
    }
    if (this.reusesChunks) this.keepCopyOf(chunk);
    return messages;
  }

  /**
   * Decodes nothing more, e.g. once the session has rejected a message (PROTOCOL.md section 4,
   * failure) or read a bye. Called from onMessage, the push under way returns right after that
   * message. Later pushes return no messages and hold no bytes; the held bytes are let go.
   */
  stop(): void {
    this.isStopped = true;
    this.release();
  }

  /** True once stop() was called (or onMessage threw). */
  get stopped(): boolean {
    return this.isStopped;
  }

  /**
   * While a pooled payload is being read: the part of its destination still to be filled, for the
   * caller to read bytes into directly (then call payloadWritten). The one copy left is the
   * kernel's. Undefined otherwise: push() the bytes.
   */
  payloadTarget(): Buffer | undefined {
    if (this.state !== 'pooledPayload' || this.error || this.isStopped) return undefined;
    return this.target!.subarray(this.targetFilled, this.payloadLength);
  }

  /**
   * `bytes` bytes were written at the start of payloadTarget(), arriving at `receivedAt`: like
   * push() with them, but without a copy. Returns (or hands to onMessage) the messages completed.
   */
  payloadWritten(bytes: number, onMessage?: (message: Message) => void, receivedAt?: number): Message[] {
    if (this.error) throw this.error;
    if (this.isStopped) return [];
    if (this.state !== 'pooledPayload') throw new Error('payloadWritten() without a payloadTarget()');
    if (!Number.isInteger(bytes) || bytes < 0 || bytes > this.payloadLength - this.targetFilled) {
      throw new RangeError(`payloadWritten(${bytes}): the payload has ${this.payloadLength - this.targetFilled} bytes left`);
    }
    const messages: Message[] = [];
    const deliver = onMessage ? this.guarded(onMessage) : (message: Message) => void messages.push(message);
    if (bytes === 0) return messages;
    this.targetCrc = this.verifyChecksum ? crc32(this.target!.subarray(this.targetFilled, this.targetFilled + bytes), this.targetCrc) : 0;
    this.targetFilled += bytes;
    this.lastConsumedAt = receivedAt ?? NaN;
    try {
      this.decodeBuffered(deliver);
    } catch (err) {
      if (err instanceof ProtocolError && !this.isStopped) this.fail(err);
      throw err;
    }
    return messages;
  }

  /** Bytes held waiting for the rest of a message, a pooled payload's filled part included (for memory accounting). */
  get bufferedBytes(): number {
    return this.buffered + this.targetFilled;
  }

  /** True when bytes of an unfinished message are held (e.g. connection closed mid-message = truncated). */
  get midMessage(): boolean {
    return this.state !== 'messageLength' || this.buffered > 0;
  }

  /** The error that stopped this decoder, if any. */
  get failed(): ProtocolError | undefined {
    return this.error;
  }

  /** onMessage, stopping the decoder if it throws. */
  private guarded(onMessage: (message: Message) => void): (message: Message) => void {
    return (message) => {
      try {
        onMessage(message);
      } catch (err) {
        this.stop();
        throw err;
      }
    };
  }

  /** The state machine: each step runs only once all of its bytes are here. */
  private decodeBuffered(deliver: (message: Message) => void): void {
    for (;;) {
      if (this.isStopped) return;
      switch (this.state) {
        case 'messageLength':
          if (this.buffered < LENGTH_PREFIX_BYTES) return;
          this.readMessageLength();
          break;
        case 'headerLength':
          if (this.buffered < HEADER_LENGTH_BYTES) return;
          this.readHeaderLength();
          break;
        case 'header':
          if (this.buffered < this.headerLength) return;
          this.readHeader();
          break;
        case 'payload':
          if (this.buffered < this.payloadLength) return;
          deliver(this.readPayload());
          break;
        case 'pooledPayload':
          this.fillTarget();
          if (this.targetFilled < this.payloadLength) return;
          deliver(this.finishPooledPayload());
          break;
      }
    }
  }

  private readMessageLength(): void {
    const first = this.currentChunk();
    this.messageFirstAt = this.chunkTimes[this.first];
    this.messageBytesInFirstChunk = first.length - this.offset;
    // Two 32-bit halves, no BigInt and no allocation: a hostile 2^64-1 is refused right here.
    // high * 2^32 + low is exact below 2^53; above that it exceeds any limit anyway.
    const high = this.readUInt32();
    const low = this.readUInt32();
    const length = high * TWO_POW_32 + low;
    if (length > this.maxMessageBytes) {
      const exact = ((BigInt(high) << 32n) | BigInt(low)).toString();
      throw new TooLargeError(`message length ${exact} exceeds the limit of ${this.maxMessageBytes} bytes`);
    }
    if (length < HEADER_LENGTH_BYTES) {
      throw new LengthMismatchError(
        `message length ${length} is shorter than the ${HEADER_LENGTH_BYTES}-byte header length field`,
      );
    }
    this.messageLength = length;
    this.state = 'headerLength';
  }

  private readHeaderLength(): void {
    const headerLength = this.readUInt32();
    if (headerLength > this.maxHeaderBytes) {
      throw new TooLargeError(`header length ${headerLength} exceeds the limit of ${this.maxHeaderBytes} bytes`);
    }
    const bodyAfterField = this.messageLength - HEADER_LENGTH_BYTES;
    if (headerLength > bodyAfterField) {
      throw new LengthMismatchError(
        `header length ${headerLength} exceeds the ${bodyAfterField} bytes left in a message of length ${this.messageLength}`,
      );
    }
    this.headerLength = headerLength;
    this.payloadLength = bodyAfterField - headerLength;
    this.state = 'header';
  }

  private readHeader(): void {
    const bytes = this.consume(this.headerLength);
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch (err) {
      throw new BadHeaderError(`header (${bytes.length} bytes) is not valid UTF-8`, { cause: err });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      const detail = err instanceof Error ? `: ${err.message}` : '';
      throw new BadHeaderError(`header (${bytes.length} bytes) is not valid JSON${detail}`, { cause: err });
    }
    const header = parseHeader(json);
    checkPayloadLength(header, this.payloadLength);
    if (header.type === 'frame' && header.payloadLength > this.maxFrameBytes) {
      throw new TooLargeError(
        `frame ${header.seq} payload of ${header.payloadLength} bytes exceeds the frame limit of ${this.maxFrameBytes} bytes`,
      );
    }
    this.header = header;
    this.state = 'payload';
    if (header.type === 'frame' && this.payloadBuffers && this.frameLimitSet && this.payloadLength >= this.pooledPayloadMinBytes) {
      this.target = this.payloadBuffers.take(this.payloadLength);
      if (this.target.length !== this.payloadLength) {
        throw new RangeError(`payloadBuffers.take(${this.payloadLength}) returned ${this.target.length} bytes`);
      }
      this.targetFilled = 0;
      this.targetCrc = 0;
      this.state = 'pooledPayload';
    }
  }

  /** Copies buffered bytes into the pooled destination (and checksums them while they are in cache). */
  private fillTarget(): void {
    const target = this.target!;
    while (this.buffered > 0 && this.targetFilled < this.payloadLength) {
      const source = this.currentChunk();
      const take = Math.min(source.length - this.offset, this.payloadLength - this.targetFilled);
      source.copy(target, this.targetFilled, this.offset, this.offset + take);
      if (this.verifyChecksum) this.targetCrc = crc32(target.subarray(this.targetFilled, this.targetFilled + take), this.targetCrc);
      this.targetFilled += take;
      this.advance(take);
    }
  }

  private finishPooledPayload(): Message {
    const header = this.header as Header;
    const payload = this.target!;
    this.target = undefined;
    this.targetFilled = 0;
    if (header.type === 'frame' && this.verifyChecksum && this.targetCrc !== header.crc32) {
      // Not given back: a pool keeps memory for frames that pass, never for a stream of failing ones.
      throw new ChecksumError(`frame ${header.seq} payload CRC-32 is ${hex32(this.targetCrc)} but its header says ${hex32(header.crc32)}`);
    }
    return this.completed(header, payload, true);
  }

  /**
   * reusesChunks: the caller is about to overwrite `chunk`; whatever of it is still held (the
   * start of an unfinished message) is copied first.
   */
  private keepCopyOf(chunk: Buffer): void {
    const last = this.chunks.length - 1;
    if (last < this.first || this.chunks[last] !== chunk) return;
    const start = last === this.first ? this.offset : 0;
    const copy = Buffer.allocUnsafe(chunk.length - start);
    chunk.copy(copy, 0, start);
    this.chunks[last] = copy;
    if (last === this.first) this.offset = 0;
  }

  private readPayload(): Message {
    const header = this.header as Header;
    const payload = this.consume(this.payloadLength, this.reusesChunks);
    if (header.type === 'frame' && this.verifyChecksum) {
      const actual = crc32(payload);
      if (actual !== header.crc32) {
        throw new ChecksumError(
          `frame ${header.seq} payload CRC-32 is ${hex32(actual)} but its header says ${hex32(header.crc32)}`,
        );
      }
    }
    return this.completed(header, payload, false);
  }

  private completed(header: Header, payload: Buffer, pooled: boolean): Message {
    this.header = undefined;
    this.state = 'messageLength';
    const message: Message = pooled ? { header, payload, pooled } : { header, payload };
    const firstAt = this.messageFirstAt;
    const lastAt = this.lastConsumedAt;
    if (firstAt === undefined || Number.isNaN(firstAt) || Number.isNaN(lastAt)) return message;
    const total = LENGTH_PREFIX_BYTES + this.messageLength;
    message.arrival = { spanMs: Math.max(0, lastAt - firstAt), spanBytes: Math.max(0, total - this.messageBytesInFirstChunk) };
    return message;
  }

  /** Reads a big-endian uint32 from the buffered bytes (caller checked there are 4). */
  private readUInt32(): number {
    const chunk = this.currentChunk();
    if (chunk.length - this.offset >= 4) {
      const value = chunk.readUInt32BE(this.offset);
      this.advance(4);
      return value;
    }
    // The 4 bytes span chunks: assemble them one by one rather than allocate.
    let value = 0;
    for (let i = 0; i < 4; i++) {
      value = value * 256 + (this.currentChunk()[this.offset] as number);
      this.advance(1);
    }
    return value;
  }

  /**
   * Takes the next n buffered bytes (caller checked there are n): a view when they lie in one
   * chunk (unless `copy`), else one copy into a fresh Buffer. The decoder never writes into either afterwards.
   */
  private consume(n: number, copy = false): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const chunk = this.currentChunk();
    const start = this.offset;
    if (!copy && chunk.length - start >= n) {
      this.advance(n);
      return chunk.subarray(start, start + n);
    }
    const out = Buffer.allocUnsafe(n);
    let written = 0;
    while (written < n) {
      const source = this.currentChunk();
      const take = Math.min(source.length - this.offset, n - written);
      source.copy(out, written, this.offset, this.offset + take);
      this.advance(take);
      written += take;
    }
    return out;
  }

  private currentChunk(): Buffer {
    return this.chunks[this.first] as Buffer;
  }

  /** Marks n bytes of the current chunk consumed (n never exceeds what is left of it). */
  private advance(n: number): void {
    this.lastConsumedAt = this.chunkTimes[this.first] as number;
    this.buffered -= n;
    this.offset += n;
    if (this.offset === this.currentChunk().length) {
      this.chunks[this.first] = undefined; // consumed: let the chunk be collected
      this.first++;
      this.offset = 0;
      if (this.first === this.chunks.length) {
        this.chunks.length = 0;
        this.chunkTimes.length = 0;
        this.first = 0;
      }
    }
  }

  private fail(error: ProtocolError): void {
    this.error = error;
    this.release();
  }

  /** Nothing more will be decoded: lets go of the bytes held and of the unfinished message. */
  private release(): void {
    this.state = 'messageLength';
    this.chunks.length = 0;
    this.chunkTimes.length = 0;
    this.first = 0;
    this.offset = 0;
    this.buffered = 0;
    this.header = undefined;
    this.target = undefined; // an unfinished or failed payload's destination is not given back (see finishPooledPayload)
    this.targetFilled = 0;
  }
}

function limitOption(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative safe integer, got ${value}`);
  }
  return value;
}

function hex32(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}
