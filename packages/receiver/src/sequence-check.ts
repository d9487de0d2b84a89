import type { FrameHeader } from '@camstream/protocol';

export class OutOfOrderError extends Error {
  readonly code = 'ERR_OUT_OF_ORDER';
}

/**
 * Checks each frame's sequence number against the sender's declared drops. A gap the sender
 * declared (its `dropped` counter rose by the same amount) is a drop for a slow viewer; any
 * other gap means frames were lost where they must not be, and counts as a gap.
 */
export class SequenceCheck {
  private lastSeq: number | undefined;
  private lastDropped = 0;
  declaredDrops = 0;
  undeclaredGaps = 0;

  /** Call at the start of each connection: the sender numbers frames per stream, not per viewer. */
  reset(): void {
    this.lastSeq = undefined;
    this.lastDropped = 0;
  }

  accept(header: FrameHeader): void {
    if (this.lastSeq !== undefined && header.seq <= this.lastSeq) {
      throw new OutOfOrderError(`frame ${header.seq} arrived after frame ${this.lastSeq}: sequence numbers must increase`);
    }
    if (header.dropped < this.lastDropped) {
      throw new OutOfOrderError(`the sender's drop counter went back from ${this.lastDropped} to ${header.dropped}`);
    }
    const declared = header.dropped - this.lastDropped;
    if (this.lastSeq !== undefined) {
      const gap = header.seq - this.lastSeq - 1;
      this.declaredDrops += Math.min(gap, declared);
      this.undeclaredGaps += Math.max(0, gap - declared);
    }
    this.lastSeq = header.seq;
    this.lastDropped = header.dropped;
  }
}
