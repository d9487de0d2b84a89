import { z } from 'zod';
import { ProtocolError, SchemaError, VersionMismatchError } from './errors';
import { type FrameHeader, type HelloHeader, headerSchema, parseHeader, type StreamDescription } from './schema';
import { goldenVectors, h264Keyframe, helloFromSender, jpegFrame } from './testing/vectors';

const stream = (helloFromSender.header as Extract<HelloHeader, { role: 'sender' }>).stream;
const frame = jpegFrame.header as FrameHeader;

function schemaFailure(value: unknown): SchemaError {
  try {
    parseHeader(value);
  } catch (err) {
    expect(err).toBeInstanceOf(SchemaError);
    return err as SchemaError;
  }
  throw new Error(`accepted ${JSON.stringify(value)}`);
}

describe('parseHeader', () => {
  it.each(goldenVectors.map((v) => [v.name, v] as const))('accepts the %s header', (_name, vector) => {
    expect(parseHeader(JSON.parse(JSON.stringify(vector.header)))).toEqual(vector.header);
  });

  it('requires a stream in a sender hello and forbids it in a receiver hello', () => {
    const { stream: _stream, ...withoutStream } = helloFromSender.header as Extract<HelloHeader, { role: 'sender' }>;
    expect(schemaFailure(withoutStream).message).toContain('stream: Invalid input: expected object');
    expect(schemaFailure({ ...helloFromSender.header, role: 'receiver' }).message).toContain('Unrecognized key: "stream"');
    expect(schemaFailure({ ...helloFromSender.header, role: 'viewer' }).message).toContain('role:');
  });

  it('accepts a hello without the optional name and stream fields', () => {
    expect(parseHeader({ type: 'hello', protocol: 'camstream', version: 2, role: 'receiver' })).toBeDefined();
    const minimal: StreamDescription = { width: 1, height: 1, fps: 0, pixelFormat: 'bgr24', encoding: 'raw-bgr' };
    expect(parseHeader({ type: 'hello', protocol: 'camstream', version: 2, role: 'sender', stream: minimal })).toBeDefined();
  });

  it.each<[string, Partial<StreamDescription> | Record<string, unknown>]>([
    ['width', { width: 0 }],
    ['width', { width: 16385 }],
    ['height', { height: 2.5 }],
    ['fps', { fps: 1001 }],
    ['fps', { fps: -1 }],
    ['pixelFormat', { pixelFormat: 'rgb24' }],
    ['encoding', { encoding: 'h265' }],
    ['quality', { quality: 0 }],
    ['bitrate', { bitrate: 0 }],
    ['bitrate', { bitrate: 1.5 }],
    ['rungs.0.bitrate', { rungs: [{ width: 4, height: 4, bitrate: -1 }] }],
    ['quality', { quality: 101 }],
    ['source', { source: 'x'.repeat(201) }],
    ['', { extra: true }],
  ])('refuses a stream description with a bad %s', (field, change) => {
    const message = schemaFailure({ ...helloFromSender.header, stream: { ...stream, ...change } }).message;
    expect(message).toContain(field ? `stream.${field}:` : 'Unrecognized key: "extra"');
  });

  it('accepts an h264 stream with bitrate rungs (section 4.6)', () => {
    const h264: StreamDescription = { ...stream, encoding: 'h264', bitrate: 4_000_000, rungs: [{ width: 640, height: 480, bitrate: 2_400_000 }] };
    delete h264.quality;
    expect(parseHeader({ ...helloFromSender.header, stream: h264 })).toMatchObject({ stream: h264 });
  });

  it('takes keyframe: true on an h264 frame only, and never false', () => {
    const key = h264Keyframe.header as FrameHeader;
    expect(parseHeader(key)).toEqual(key);
    const { keyframe: _keyframe, ...other } = key;
    expect(parseHeader(other)).toEqual(other);
    expect(schemaFailure({ ...key, keyframe: false }).message).toMatch(/^invalid "frame" header: keyframe: /);
    expect(schemaFailure({ ...frame, keyframe: true }).message).toBe('invalid "frame" header: keyframe: only an h264 frame can be a keyframe (got true)');
  });

  it('refuses a name over 200 characters', () => {
    expect(parseHeader({ ...helloFromSender.header, name: 'n'.repeat(200) })).toBeDefined();
    expect(schemaFailure({ ...helloFromSender.header, name: 'n'.repeat(201) }).message).toContain('name:');
  });

  it.each<[keyof FrameHeader, unknown]>([
    ['seq', -1],
    ['seq', 1.5],
    ['seq', 2 ** 53],
    ['captureTime', -1],
    ['captureTime', null],
    ['width', 0],
    ['height', 16385],
    ['channels', 2],
    ['encoding', 'gif'],
    ['payloadLength', -8],
    ['crc32', 2 ** 32],
    ['crc32', -1],
    ['dropped', -1],
    ['dropped', undefined],
  ])('refuses a frame with %s = %p', (field, value) => {
    const message = schemaFailure({ ...frame, [field]: value }).message;
    expect(message).toMatch(new RegExp(`^invalid "frame" header: ${field}: `));
  });

  it('limits bye reasons to 1..1000 characters', () => {
    expect(parseHeader({ type: 'bye', reason: 'r'.repeat(1000) })).toBeDefined();
    expect(schemaFailure({ type: 'bye', reason: '' }).message).toContain('reason:');
    expect(schemaFailure({ type: 'bye', reason: 'r'.repeat(1001) }).message).toContain('reason:');
  });

  it('requires code and reason in an error', () => {
    expect(schemaFailure({ type: 'error', reason: 'x' }).message).toContain('code:');
  });

  it('names the unknown type and keeps the zod error as the cause', () => {
    const error = schemaFailure({ type: 'teleport' });
    expect(error.code).toBe('ERR_SCHEMA');
    expect(error.message).toContain(`invalid "teleport" header: type: Invalid discriminator value. Expected 'hello' | 'frame' | 'bye' | 'error' | 'challenge' | 'auth' | 'ping'`);
    expect(error.cause).toBeInstanceOf(z.ZodError);
  });

  it('reports only the first three problems', () => {
    const message = schemaFailure({ ...frame, seq: -1, width: 0, height: 0, channels: 0, dropped: -1 }).message;
    expect(message).toContain('; and 2 more');
  });

  it('checks protocol and version before the shape of a hello', () => {
    expect(() => parseHeader({ type: 'hello', protocol: 'camstream', version: 3, role: 'receiver', newField: 1 })).toThrow(VersionMismatchError);
    expect(() => parseHeader({ type: 'hello', protocol: 'rtsp', version: 1, role: 'receiver' })).toThrow(
      'peer speaks protocol "rtsp" version 1, this side speaks "camstream" version 2',
    );
    // A hello missing the fields is a schema error, not a version one.
    expect(schemaFailure({ type: 'hello', role: 'receiver' }).message).toContain('protocol:');
  });

  it('only throws ProtocolError, even for values JSON cannot produce', () => {
    for (const value of [undefined, 1n, Symbol('x'), () => 1, { type: 'hello', version: 2n }, { type: 1n }]) {
      expect(() => parseHeader(value)).toThrow(ProtocolError);
    }
  });
});

describe('headerSchema', () => {
  it('is the zod schema behind parseHeader (shape only, no version check)', () => {
    expect(headerSchema.safeParse(frame).success).toBe(true);
    expect(headerSchema.safeParse({ ...frame, extra: 1 }).success).toBe(false);
  });

  it('narrows hello by role at the type level', () => {
    const hello = parseHeader(helloFromSender.header);
    if (hello.type !== 'hello' || hello.role !== 'sender') throw new Error('expected a sender hello');
    const width: number = hello.stream.width; // compiles only because sender hellos have a stream
    expect(width).toBe(640);
  });
});
