// The public surface is a short explicit list; this test makes any change to it deliberate.
import * as protocol from './index';

describe('package exports', () => {
  it('exports exactly the runtime API', () => {
    expect(Object.keys(protocol).sort()).toEqual(
      [
        'BadHeaderError',
        'ChecksumError',
        'DEFAULT_MAX_HEADER_BYTES',
        'DEFAULT_MAX_MESSAGE_BYTES',
        'DEFAULT_MAX_STREAM_SIZE',
        'FlowWindow',
        'ReceiverSession',
        'SenderSession',
        'SequenceCheck',
        'SessionError',
        'frameLimit',
        'prepareFrame',
        'checkFrameAgainstStream',
        'streamRungs',
        'HEADER_LENGTH_BYTES',
        'LENGTH_PREFIX_BYTES',
        'LengthMismatchError',
        'MessageDecoder',
        'PROTOCOL_NAME',
        'PROTOCOL_VERSION',
        'ProtocolError',
        'SchemaError',
        'TooLargeError',
        'VersionMismatchError',
        'checkDecodableStart',
        'crc32',
        'newNonce',
        'proofsMatch',
        'receiverProof',
        'senderProof',
        'encodeMessage',
        'frameHeader',
        'headerSchema',
        'parseHeader',
      ].sort(),
    );
  });

  it('has the agreed constants', () => {
    expect(protocol.PROTOCOL_NAME).toBe('camstream');
    expect(protocol.PROTOCOL_VERSION).toBe(2);
    expect(protocol.DEFAULT_MAX_MESSAGE_BYTES).toBe(64 * 1024 * 1024);
    expect(protocol.DEFAULT_MAX_HEADER_BYTES).toBe(64 * 1024);
    expect(protocol.LENGTH_PREFIX_BYTES).toBe(8);
    expect(protocol.HEADER_LENGTH_BYTES).toBe(4);
  });
});
