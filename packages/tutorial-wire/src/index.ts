export { TutorialFrameDecoder } from './frame-decoder';
export type { TutorialFrameDecoderOptions } from './frame-decoder';
export { decodeArrayPickle } from './pickle-decoder';
export type { DecodedImage, PickleDecodeOptions } from './pickle-decoder';
export { encodeTutorialFrame } from './pickle-encoder';
export type { BgrImage, TutorialFrameParts } from './pickle-encoder';
export { DEFAULT_MAX_SIZE, LENGTH_PREFIX_BYTES, maxPickleLength } from './limits';
export type { MaxSize } from './limits';
export {
  TutorialWireError,
  NotAllowedError,
  UnsupportedArrayError,
  TooLargeError,
  LengthMismatchError,
  TruncatedError,
  MalformedPickleError,
} from './errors';
export type { TutorialWireErrorCode, TutorialWireErrorOptions } from './errors';
