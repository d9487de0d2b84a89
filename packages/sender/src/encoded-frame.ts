import type { FrameHeader } from '@camstream/protocol';

/** A frame encoded once and shared by every viewer; `dropped` is filled in per viewer. */
export interface EncodedFrame {
  readonly header: Omit<FrameHeader, 'dropped'>;
  readonly payload: Buffer;
}
