import type { Display, FrameCodec, FrameSink, RawImage } from '@camstream/media';

/** The inset is this fraction of the partner's width. */
const INSET_FRACTION = 0.25;
/** Space between the inset and the picture's bottom-right corner, in pixels of the partner's image. */
const INSET_MARGIN = 8;
/** Without a partner frame for this long, the window shows this side's own picture, full size. */
const PARTNER_GONE_MS = 1000;

export interface CallWindowOptions {
  /** Scales this side's frames down to the inset (the OpenCV codec). */
  codec: Pick<FrameCodec, 'resize'>;
  now?: () => number;
}

/**
 * What one call window shows: the partner's video with a small inset of this side's own camera
 * in the bottom-right corner, composed into one image; while no partner frame has come for a
 * second (not connected yet, or gone), this side's own picture alone. Two sinks feed it: the
 * partner's frames (partnerSink, from the receiving half) and this side's captures (previewSink,
 * from the capture pump). Both are latest-wins: a capture that arrives while the previous one is
 * still being scaled is skipped, and the window itself shows only the newest image.
 *
 * Composition copies the partner's image once into a buffer of its own (the receiver reuses its
 * buffers once the sink is done) and the scaled inset over it.
 */
export class CallWindow {
  readonly partnerSink: FrameSink;
  readonly previewSink: FrameSink;
  private readonly now: () => number;
  private composed: Buffer | undefined;
  /** The inset as last scaled; `scaling` is the one being written. Swapped when a scale is done. */
  private inset: RawImage | undefined;
  private spare: Buffer | undefined;
  private scaling = false;
  private lastPartnerAt = -Infinity;
  private partnerSize: { width: number; height: number } | undefined;

  constructor(
    private readonly display: Display,
    private readonly options: CallWindowOptions,
  ) {
    this.now = options.now ?? (() => performance.now());
    this.partnerSink = { write: (image) => this.showPartner(image), close: async () => undefined };
    this.previewSink = { write: (image) => this.showOwn(image), close: async () => undefined };
  }

  /** Resolves when the person pressed q or Esc, or closed the window. */
  get closed(): Promise<void> {
    return this.display.closed;
  }

  close(): Promise<void> {
    return this.display.close();
  }

  private partnerLive(): boolean {
    return this.now() - this.lastPartnerAt < PARTNER_GONE_MS;
  }

  private showPartner(image: RawImage): Promise<void> | void {
    this.lastPartnerAt = this.now();
    this.partnerSize = { width: image.width, height: image.height };
    const inset = this.inset;
    if (image.channels !== 3 || !inset || inset.width + INSET_MARGIN > image.width || inset.height + INSET_MARGIN > image.height) {
      return this.display.write(image);
    }
    const bytes = image.data.length;
    if (this.composed?.length !== bytes) this.composed = Buffer.allocUnsafe(bytes);
    const composed = this.composed;
    image.data.copy(composed);
    // The inset's rows, over the bottom-right corner.
    const rowBytes = image.width * 3;
    const insetRowBytes = inset.width * 3;
    const left = image.width - inset.width - INSET_MARGIN;
    const top = image.height - inset.height - INSET_MARGIN;
    for (let y = 0; y < inset.height; y++) {
      inset.data.copy(composed, (top + y) * rowBytes + left * 3, y * insetRowBytes, (y + 1) * insetRowBytes);
    }
    // The window is done with `composed` once this settles; the next partner frame waits for it.
    return this.display.write({ width: image.width, height: image.height, channels: 3, data: composed });
  }

  private showOwn(image: RawImage): Promise<void> | void {
    if (!this.partnerLive() || !this.partnerSize) return this.display.write(image);
    if (this.scaling || image.channels !== 3) return; // latest wins: the inset is a glance, not a stream
    const width = even(Math.max(16, this.partnerSize.width * INSET_FRACTION));
    const height = even(Math.max(16, (width * image.height) / image.width));
    const bytes = width * height * 3;
    const target = this.spare?.length === bytes ? this.spare : Buffer.allocUnsafe(bytes);
    this.scaling = true;
    return this.options.codec.resize(image, width, height, target).then(
      (scaled) => {
        // The old inset's buffer is the next scale's target: the composer never reads a buffer being written.
        this.spare = this.inset?.data.length === bytes ? this.inset.data : undefined;
        // A capture already the inset's size comes back as itself: its buffer goes back to the source.
        this.inset = scaled.data === target ? scaled : { ...scaled, data: Buffer.from(scaled.data) };
        this.scaling = false;
      },
      () => {
        this.scaling = false;
      },
    );
  }
}

function even(n: number): number {
  return Math.max(2, 2 * Math.round(n / 2));
}
