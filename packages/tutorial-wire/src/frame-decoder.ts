import { TooLargeError, TruncatedError, TutorialWireError } from './errors';
import { LENGTH_PREFIX_BYTES, limitsFor, type MaxSize } from './limits';

export interface TutorialFrameDecoderOptions {
  /**
   * Largest image the stream may carry (`--max-size`); default 7680x4320. A frame whose 8-byte
   * length is above maxPickleLength(maxSize) is refused from that length, before it is buffered.
   */
  maxSize?: MaxSize;
  /**
   * Where a pickle that spans chunks is copied to: returns a Buffer of exactly `bytes` bytes that
   * the caller owns from then on (e.g. from a pool it gives buffers back to). Called only once the
   * pickle's length passed the limit and its bytes are all here. Default: a new Buffer.
   */
  allocate?: (bytes: number) => Buffer;
}

const TWO_POW_32 = 2 ** 32;

/**
 * Incremental decoder for the tutorial's framing, `struct.pack("Q", len(a)) + a`: push socket
 * chunks in, get each frame's pickle bytes out (to hand to decodeArrayPickle).
 *
 * Bytes are kept as the list of chunks they arrived in. A pickle that lies inside one chunk is
 * returned as a view of it; one that spans chunks is copied exactly once into a Buffer of its own
 * (from `allocate`, when given).
 */
export class TutorialFrameDecoder {
  private readonly maxPickleLength: number;
  private readonly allocate: (bytes: number) => Buffer;
  /** Chunks as they arrived; consumed ones are cleared and skipped by index (no shift()). */
  private readonly chunks: (Buffer | undefined)[] = [];
  private first = 0;
  /** Bytes of chunks[first] already consumed. */
  private offset = 0;
  private buffered = 0;
  /** Length of the pickle being read, once its 8-byte prefix has been read. */
  private pickleLength: number | undefined;
  private error: TutorialWireError | undefined;

  constructor(options: TutorialFrameDecoderOptions = {}) {
    this.maxPickleLength = limitsFor(options.maxSize).maxPickleLength;
    this.allocate = options.allocate ?? ((bytes) => Buffer.allocUnsafe(bytes));
  }

  /**
   * Feeds bytes; returns the pickles they complete (possibly none). Throws a TutorialWireError on
   * a refused length; after that every push throws the same error (the decoder stays failed).
   */
  push(chunk: Buffer): Buffer[] {
    if (this.error) throw this.error;
    const pickles: Buffer[] = [];
    if (chunk.length === 0) return pickles;
    // Drop the cleared slots once they are half the list: amortised O(1) per chunk.
    if (this.first > 0 && this.first * 2 >= this.chunks.length) {
      this.chunks.splice(0, this.first);
      this.first = 0;
    }
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    try {
      for (;;) {
        if (this.pickleLength === undefined) {
          if (this.buffered < LENGTH_PREFIX_BYTES) break;
          this.pickleLength = this.readLength();
        }
        if (this.buffered < this.pickleLength) break;
        pickles.push(this.consume(this.pickleLength));
        this.pickleLength = undefined;
      }
    } catch (err) {
      if (err instanceof TutorialWireError) this.fail(err);
      throw err;
    }
    return pickles;
  }

  /**
   * The stream has ended: throws TruncatedError if it ended inside a frame (its length prefix or
   * its pickle), else does nothing.
   */
  end(): void {
    if (this.error) throw this.error;
    if (this.pickleLength !== undefined) {
      this.fail(new TruncatedError(`the stream ended ${this.buffered} bytes into a ${this.pickleLength}-byte pickle`));
    } else if (this.buffered > 0) {
      this.fail(new TruncatedError(`the stream ended ${this.buffered} bytes into a frame's ${LENGTH_PREFIX_BYTES}-byte length`));
    }
    if (this.error) throw this.error;
  }

  /** Bytes held waiting for the rest of a frame (for memory accounting). */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** True while bytes of an unfinished frame are held. */
  get midFrame(): boolean {
    return this.pickleLength !== undefined || this.buffered > 0;
  }

  /** The error that stopped this decoder, if any. */
  get failed(): TutorialWireError | undefined {
    return this.error;
  }

  /** The 8-byte little-endian length, as two 32-bit halves: no BigInt, no allocation. */
  private readLength(): number {
    const low = this.readUInt32LE();
    const high = this.readUInt32LE();
    const length = high * TWO_POW_32 + low; // exact below 2^53, and above any limit beyond it
    if (length > this.maxPickleLength) {
      const exact = ((BigInt(high) << 32n) | BigInt(low)).toString();
      throw new TooLargeError(`frame length ${exact} exceeds the limit of ${this.maxPickleLength} bytes for the configured maximum image size`);
    }
    return length;
  }

  private readUInt32LE(): number {
    const chunk = this.currentChunk();
    if (chunk.length - this.offset >= 4) {
      const value = chunk.readUInt32LE(this.offset);
      this.advance(4);
      return value;
    }
    // The 4 bytes span chunks: assemble them one by one rather than allocate.
    let value = 0;
    for (let i = 0; i < 4; i++) {
      value += (this.currentChunk()[this.offset] as number) * 2 ** (8 * i);
      this.advance(1);
    }
    return value;
  }

  /** The next n buffered bytes: a view when they lie in one chunk, else one copy. */
  private consume(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const chunk = this.currentChunk();
    const start = this.offset;
    if (chunk.length - start >= n) {
      this.advance(n);
      return chunk.subarray(start, start + n);
    }
    const out = this.allocate(n);
    if (out.length !== n) throw new RangeError(`allocate(${n}) returned a buffer of ${out.length} bytes`);
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

  private advance(n: number): void {
    this.buffered -= n;
    this.offset += n;
    if (this.offset === this.currentChunk().length) {
      this.chunks[this.first] = undefined; // consumed: let the chunk be collected
      this.first++;
      this.offset = 0;
      if (this.first === this.chunks.length) {
        this.chunks.length = 0;
        this.first = 0;
      }
    }
  }

  private fail(error: TutorialWireError): void {
    this.error = error;
    // Nothing more will be decoded: let go of the bytes held.
    this.chunks.length = 0;
    this.first = 0;
    this.offset = 0;
    this.buffered = 0;
    this.pickleLength = undefined;
  }
}
