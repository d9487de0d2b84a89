import type { PayloadBuffers } from '@camstream/protocol';

/** Allocations are rounded up to this, plus an eighth: JPEG payloads of a stream vary a little in size. */
const GRANULE = 64 * 1024;

/**
 * Reuses large buffers of any size: frame payloads (a raw frame's is its image) and decoded
 * pixels of every rung. A fresh 1080p Buffer costs about 1500 page faults (9 us each here) and
 * later a GC; a reused one costs nothing. take() hands out an exact-length view of an allocation
 * with some headroom, so that the next frame, a little larger or smaller, reuses it too; give()
 * takes the view back and keeps its allocation for the next take(), at most `capacity` of them.
 *
 * A buffer is given back only once nothing reads it (every sink is done, or a decode finished),
 * and only by its one owner; one that never comes back (a sink keeps it) is simply collected.
 */
export class AnySizeBufferPool implements PayloadBuffers {
  private readonly free: ArrayBuffer[] = [];
  /** Allocations of this pool that are out (handed out by take, not given back yet). */
  private readonly lent = new WeakSet<ArrayBuffer>();
  private allocated = 0;

  constructor(private readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError(`pool capacity must be a whole number, got ${capacity}`);
  }

  /** A buffer of exactly `bytes` bytes that nothing else reads or writes until it is given back. */
  take(bytes: number): Buffer {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const size = this.free[i]!.byteLength;
      // Not one much larger than needed: it would be wasted here and missed where it fits.
      if (size >= bytes && size <= 2 * bytes + GRANULE && (best < 0 || size < this.free[best]!.byteLength)) best = i;
    }
    const memory = best >= 0 ? this.free.splice(best, 1)[0]! : this.allocate(bytes);
    this.lent.add(memory);
    return Buffer.from(memory, 0, bytes);
  }

  /** Takes back a buffer from take(); anything else, or a buffer given back twice, is ignored. */
  give(buffer: Buffer): void {
    const memory = buffer.buffer;
    if (!(memory instanceof ArrayBuffer) || !this.lent.has(memory)) return;
    this.lent.delete(memory);
    if (this.free.length >= this.capacity) this.free.shift(); // the oldest goes to the GC
    this.free.push(memory);
  }

  /** Allocations made since the start: stays flat while buffers are reused. */
  get allocations(): number {
    return this.allocated;
  }

  /** Buffers waiting to be taken again. */
  get available(): number {
    return this.free.length;
  }

  private allocate(bytes: number): ArrayBuffer {
    this.allocated++;
    const size = Math.ceil((bytes + bytes / 8) / GRANULE) * GRANULE;
    // Uninitialised, like Buffer.allocUnsafeSlow: every byte is written before it is read.
    return Buffer.allocUnsafeSlow(size).buffer as ArrayBuffer;
  }
}
