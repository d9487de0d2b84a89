export {
  PROTOCOL_NAME,
  PROTOCOL_VERSION,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_MAX_HEADER_BYTES,
  LENGTH_PREFIX_BYTES,
  HEADER_LENGTH_BYTES,
} from './constants';
export type {
  Encoding,
  Header,
  HelloHeader,
  FrameHeader,
  ByeHeader,
  ErrorHeader,
  ChallengeHeader,
  AuthHeader,
  PingHeader,
  StreamDescription,
} from './schema';
export { headerSchema, parseHeader } from './schema';
export { encodeMessage, frameHeader } from './encoder';
export type { EncodedMessage, FrameFields } from './encoder';
export { crc32 } from './checksum';
export { newNonce, receiverProof, senderProof, proofsMatch } from './auth';
export { MessageDecoder } from './decoder';
export type { Message, DecoderOptions } from './decoder';
export {
  ProtocolError,
  TooLargeError,
  BadHeaderError,
  SchemaError,
  LengthMismatchError,
  ChecksumError,
  VersionMismatchError,
} from './errors';
export type { ProtocolErrorCode, ProtocolErrorOptions } from './errors';
