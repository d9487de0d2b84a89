import type { FrameHeader } from '../schema';
import { SessionError } from './session-error';

export interface SequenceStep {
  /** Frames the sender declared it skipped just before this one (the rise of `dropped`). */
  declaredDrops: number;
  /** Frames missing before this one that the sender did not declare (must stay 0). */
  undeclaredGap: number;
}

/**
 * Checks each frame's sequence number against the sender's declared drops (PROTOCOL.md 4.2):
 * between two frames, the missing sequence numbers are declared drops (the `dropped` counter rose
 * by as much) or undeclared gaps (frames lost where they must not be). A counter that rises by
 * more than the frames missing, or goes back, and a sequence number that does not increase, are
 * session errors (ERR_OUT_OF_ORDER).
 */
export class SequenceCheck {
  private lastSeq: number | undefined;
  private lastDropped = 0;

  accept(header: FrameHeader): SequenceStep {
    const { seq, dropped } = header;
    if (this.lastSeq === undefined) {
      // The first frame may have any number (the receiver joined a running stream); its counter is the baseline.
      this.lastSeq = seq;
      this.lastDropped = dropped;
      return { declaredDrops: 0, undeclaredGap: 0 };
    }
    if (seq <= this.lastSeq) {
      throw new SessionError('ERR_OUT_OF_ORDER', `frame ${seq} arrived after frame ${this.lastSeq}: sequence numbers must increase`);
    }
    if (dropped < this.lastDropped) {
      throw new SessionError('ERR_OUT_OF_ORDER', `the sender's drop counter went back from ${this.lastDropped} to ${dropped}`);
    }
    const missing = seq - this.lastSeq - 1;
    const declared = dropped - this.lastDropped;
    if (declared > missing) {
      throw new SessionError(
        'ERR_OUT_OF_ORDER',
        `frame ${seq} declares ${declared} dropped frame(s) since frame ${this.lastSeq}, but only ${missing} are missing`,
      );
    }
    this.lastSeq = seq;
    this.lastDropped = dropped;
    return { declaredDrops: declared, undeclaredGap: missing - declared };
  }
}
