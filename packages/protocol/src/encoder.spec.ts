import { crc32 } from './checksum';
import { DEFAULT_MAX_HEADER_BYTES } from './constants';
import { MessageDecoder } from './decoder';
import { encodeMessage, frameHeader } from './encoder';
import { LengthMismatchError, SchemaError, TooLargeError, VersionMismatchError } from './errors';
import type { Header } from './schema';
import { fromHex, toHex } from './testing/bytes';
import { goldenVectors, helloFromReceiver, jpegFrame, rawFrame } from './testing/vectors';

describe('encodeMessage', () => {
  it.each(goldenVectors.map((v) => [v.name, v] as const))('produces the golden bytes of %s', (_name, vector) => {
    const { head, payload } = encodeMessage(vector.header, fromHex(vector.payloadHex));
    expect(toHex(Buffer.concat([head, payload]))).toBe(toHex(fromHex(vector.hex)));
  });

  it('returns the head and the very same payload Buffer, not a copy', () => {
    const payload = fromHex(jpegFrame.payloadHex);
    const encoded = encodeMessage(jpegFrame.header, payload);
    expect(encoded.payload).toBe(payload);
    expect(encoded.head.length).toBe(fromHex(jpegFrame.hex).length - payload.length);
  });

  it('gives an empty payload when none is passed', () => {
    const { head, payload } = encodeMessage(helloFromReceiver.header);
    expect(payload.length).toBe(0);
    expect(toHex(head)).toBe(toHex(fromHex(helloFromReceiver.hex)));
  });

  it('writes fields in schema order whatever order the caller used', () => {
    const reordered = { reason: 'sender stopped', type: 'bye' } as Header;
    expect(toHex(encodeMessage(reordered).head)).toBe(toHex(encodeMessage({ type: 'bye', reason: 'sender stopped' }).head));
  });

  it('round-trips through the decoder', () => {
    const payload = Buffer.from('not really a png');
    const header = frameHeader(payload, { seq: 42, captureTime: 1.5, width: 4, height: 4, channels: 4, encoding: 'png', dropped: 3 });
    const { head } = encodeMessage(header, payload);
    const [message] = new MessageDecoder().push(Buffer.concat([head, payload]));
    expect(message?.header).toEqual(header);
    expect(message?.payload.equals(payload)).toBe(true);
  });

  it('keeps non-ASCII text intact (UTF-8 header)', () => {
    const header: Header = { type: 'bye', reason: 'caméra arrêtée 📷' };
    const { head } = encodeMessage(header);
    expect(head.readUInt32BE(8)).toBe(Buffer.byteLength(JSON.stringify(header)));
    expect(new MessageDecoder().push(head)[0]?.header).toEqual(header);
  });

  it('refuses an invalid header with a SchemaError carrying the zod error', () => {
    const bad = { type: 'bye', reason: '' } as Header;
    expect(() => encodeMessage(bad)).toThrow(SchemaError);
    try {
      encodeMessage(bad);
    } catch (err) {
      expect((err as SchemaError).message).toContain('invalid "bye" header: reason:');
      expect((err as SchemaError).cause).toBeDefined();
    }
  });

  it('refuses a hello of another version', () => {
    expect(() => encodeMessage({ ...helloFromReceiver.header, version: 1 } as Header)).toThrow(VersionMismatchError);
  });

  it('refuses a payload that disagrees with the header', () => {
    expect(() => encodeMessage(jpegFrame.header, Buffer.alloc(3))).toThrow(LengthMismatchError);
    expect(() => encodeMessage(jpegFrame.header)).toThrow('frame 7 carries 0 payload bytes but its header says payloadLength 8');
    expect(() => encodeMessage(helloFromReceiver.header, Buffer.alloc(1))).toThrow('hello message has 1 payload bytes but must have none');
  });

  it('refuses a header larger than a receiver accepts', () => {
    const header: Header = { type: 'error', code: 'E', reason: 'x'.repeat(DEFAULT_MAX_HEADER_BYTES) };
    expect(() => encodeMessage(header)).toThrow(TooLargeError);
    expect(() => encodeMessage(header)).toThrow(`over the limit of ${DEFAULT_MAX_HEADER_BYTES} bytes`);
  });
});

describe('frameHeader', () => {
  it('fills payloadLength and crc32 from the payload, dropped defaulting to 0', () => {
    const payload = fromHex(rawFrame.payloadHex);
    expect(frameHeader(payload, { seq: 0, captureTime: 1700000000000, width: 2, height: 1, channels: 3, encoding: 'raw-bgr' })).toEqual(
      rawFrame.header,
    );
    expect(crc32(payload)).toBe(0xfce35a20);
  });

  it('keeps dropped when given', () => {
    const payload = fromHex(jpegFrame.payloadHex);
    const header = frameHeader(payload, { seq: 7, captureTime: 1700000000123, width: 2, height: 1, channels: 3, encoding: 'jpeg', dropped: 2 });
    expect(header).toEqual(jpegFrame.header);
  });

  it('refuses a raw frame whose payload is not width*height*channels bytes', () => {
    expect(() => frameHeader(Buffer.alloc(5), { seq: 0, captureTime: 0, width: 2, height: 1, channels: 3, encoding: 'raw-bgr' })).toThrow(
      'raw-bgr frame 0 is 2x1x3 = 6 bytes but its header says payloadLength 5',
    );
  });

  it('refuses invalid fields', () => {
    expect(() => frameHeader(Buffer.alloc(1), { seq: -1, captureTime: 0, width: 1, height: 1, channels: 1, encoding: 'jpeg' })).toThrow(SchemaError);
    expect(() => frameHeader(Buffer.alloc(1), { seq: 0, captureTime: NaN, width: 1, height: 1, channels: 1, encoding: 'jpeg' })).toThrow(
      'captureTime:',
    );
  });
});
