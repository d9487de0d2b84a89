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
  AckHeader,
  StreamDescription,
} from './schema';
export { headerSchema, parseHeader } from './schema';
export { encodeMessage, frameHeader } from './encoder';
export { prepareFrame } from './prepared-frame';
export type { PreparedFrame } from './prepared-frame';
export type { EncodedMessage, FrameFields } from './encoder';
export { crc32 } from './checksum';
export { newNonce, receiverProof, senderProof, proofsMatch } from './auth';
export { MessageDecoder } from './decoder';
export type { Message, Arrival, DecoderOptions, PayloadBuffers } from './decoder';
export { FlowWindow } from './flow-window';
export type { AckReport, FlowWindowOptions } from './flow-window';
export { SenderSession } from './session/sender-session';
export type { SenderSessionOptions, SenderSessionEvent, SenderSessionEnd, SenderWindowView } from './session/sender-session';
export { ReceiverSession, DEFAULT_MAX_STREAM_SIZE, frameLimit } from './session/receiver-session';
export type { ReceiverSessionOptions, ReceiverSessionEvent, ReceiverSessionEnd, Rung } from './session/receiver-session';
export { checkFrameAgainstStream, checkDecodableStart, streamRungs } from './session/stream-check';
export { SequenceCheck } from './session/sequence-check';
export type { SequenceStep } from './session/sequence-check';
export { SessionError } from './session/session-error';
export type { SessionErrorCode } from './session/session-error';
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
