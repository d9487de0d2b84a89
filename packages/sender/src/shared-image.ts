import type { RawImage } from '@camstream/media';

/**
 * One captured image handed as it is (not encoded, not copied) to every outlet that sends raw
 * pixels of its own framing: the tutorial's clients. Like OutgoingFrame it counts who still needs
 * the pixels: the publisher while it hands the image out, and each outlet from offer until its
 * socket has taken the bytes (the write callback) or it dropped the image. `released` settles when
 * the count reaches zero: only then may the captured buffer go back to the source.
 */
export class SharedImage {
  readonly released: Promise<void>;
  /** The publisher holds the image from the start. */
  private holders = 1;
  private resolveReleased!: () => void;

  constructor(
    readonly image: RawImage,
    /** The frame's number in the stream (the same numbering as the camstream outlets'). */
    readonly seq: number,
    /** Wall-clock capture time, ms since the Unix epoch. */
    readonly captureTime: number,
  ) {
    this.released = new Promise<void>((resolve) => (this.resolveReleased = resolve));
  }

  /** One more holder: it must call release() once, when done with the pixels. */
  retain(): void {
    if (this.holders <= 0) throw new Error(`image ${this.seq} was already released`);
    this.holders++;
  }

  release(): void {
    if (this.holders <= 0) throw new Error(`image ${this.seq} released more often than held`);
    if (--this.holders === 0) this.resolveReleased();
  }
}
