import {
  BadHeaderError,
  ChecksumError,
  LengthMismatchError,
  ProtocolError,
  SchemaError,
  TooLargeError,
  VersionMismatchError,
} from './errors';

describe('errors', () => {
  it.each([
    [TooLargeError, 'ERR_TOO_LARGE'],
    [BadHeaderError, 'ERR_BAD_HEADER'],
    [SchemaError, 'ERR_SCHEMA'],
    [LengthMismatchError, 'ERR_LENGTH_MISMATCH'],
    [ChecksumError, 'ERR_CHECKSUM'],
    [VersionMismatchError, 'ERR_VERSION'],
  ] as const)('%p has code %s, its own name, and keeps its cause', (ErrorClass, code) => {
    const cause = new Error('underlying');
    const error = new ErrorClass('what went wrong', { cause });
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error).toBeInstanceOf(Error);
    expect(error.code).toBe(code);
    expect(error.name).toBe(ErrorClass.name);
    expect(error.message).toBe('what went wrong');
    expect(error.cause).toBe(cause);
    expect(String(error)).toBe(`${ErrorClass.name}: what went wrong`);
  });

  it('lets ProtocolError be built directly with any code', () => {
    const error = new ProtocolError('ERR_CHECKSUM', 'bad');
    expect(error.code).toBe('ERR_CHECKSUM');
    expect(error.name).toBe('ProtocolError');
    expect(error.cause).toBeUndefined();
  });
});
