/**
 * Where an inter-coded frame (an H.264 access unit) stands among the frames of its rung. Such a
 * frame can be decoded only after every frame before it back to a keyframe: a destination that
 * misses one of them must skip to the next keyframe. Frames without a link stand alone (JPEG).
 */
export interface ChainLink {
  /** The rung whose coded sequence the frame belongs to. */
  readonly rung: number;
  /** One coded sequence (one run of an encoder): frames of different sequences never refer to each other. */
  readonly sequence: number;
  /** Its place in the sequence: a frame that is no keyframe needs the frame at `index - 1`. */
  readonly index: number;
  /** Decodes on its own (an IDR picture): a destination can start here. */
  readonly keyframe: boolean;
}

/** True when `link` decodes right after `previous` (the last frame of the chain a destination took). */
export function follows(link: ChainLink, previous: ChainLink | undefined): boolean {
  return link.keyframe || (previous !== undefined && previous.sequence === link.sequence && previous.index === link.index - 1);
}
