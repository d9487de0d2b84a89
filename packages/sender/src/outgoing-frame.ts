import type { PreparedFrame } from '@camstream/protocol';

/**
 * One frame of one rung, prepared once (header serialized, CRC computed) and shared by every
 * viewer on that rung. It counts who still needs its payload: the publisher while it hands the
 * frame out, and each viewer from offer until its socket has taken the bytes (the write callback)
 * or it dropped the frame. `released` settles when the count reaches zero: a raw frame's payload
 * is the captured image itself, which may go back to the source only then.
 */
export class OutgoingFrame {
  readonly released: Promise<void>;
  private holders: number;
  private resolveReleased!: () => void;
  private everHeld: boolean;

  constructor(
    readonly prepared: PreparedFrame,
    /** The quality rung (0: the stream itself). */
    readonly rung: number,
    /** Holders from the start: the publisher (1), or none yet when the fan-out takes the first hold (0). */
    holders = 1,
  ) {
    this.holders = holders;
    this.everHeld = holders > 0;
    this.released = new Promise<void>((resolve) => (this.resolveReleased = resolve));
  }

  get seq(): number {
    return this.prepared.header.seq;
  }

  get width(): number {
    return this.prepared.header.width;
  }

  get height(): number {
    return this.prepared.header.height;
  }

  /** Bytes of the whole message for a viewer with `dropped` declared drops (what its window counts). */
  bytesFor(dropped: number): number {
    // messageBytes counts a one-digit drop count.
    return this.prepared.messageBytes + String(dropped).length - 1;
  }

  /** One more holder: it must call release() once, when done with the payload. */
  retain(): void {
    if (this.holders <= 0 && this.everHeld) throw new Error(`frame ${this.seq} (rung ${this.rung}) was already released`);
    this.holders++;
    this.everHeld = true;
  }

  release(): void {
    if (this.holders <= 0) throw new Error(`frame ${this.seq} (rung ${this.rung}) released more often than held`);
    if (--this.holders === 0) this.resolveReleased();
  }
}
