import { MessageDecoder } from './decoder';
import { encodeMessage, frameHeader } from './encoder';
import { prepareFrame } from './prepared-frame';
import { toHex } from './testing/bytes';

const payload = Buffer.from('not really a jpeg');
const fields = { seq: 12, captureTime: 1700000000123.5, width: 640, height: 360, channels: 3 as const, encoding: 'jpeg' as const, rung: 2 };

describe('prepareFrame', () => {
  it.each([0, 7, 10, 12345, 2 ** 53 - 1])('gives, for %p drops, exactly the bytes encodeMessage gives', (dropped) => {
    const prepared = prepareFrame(payload, fields);
    const expected = encodeMessage(frameHeader(payload, { ...fields, dropped }), payload).head;
    expect(toHex(prepared.headFor(dropped))).toBe(toHex(expected));
  });

  it('shares the payload Buffer and counts the message bytes', () => {
    const prepared = prepareFrame(payload, fields);
    expect(prepared.payload).toBe(payload);
    expect(prepared.messageBytes).toBe(prepared.headFor(3).length + payload.length);
  });

  it("decodes to the header with the receiver's own drop count", () => {
    const prepared = prepareFrame(payload, fields);
    const [message] = new MessageDecoder().push(Buffer.concat([prepared.headFor(41), payload]));
    expect(message?.header).toEqual({ ...prepared.header, dropped: 41 });
    expect(message?.header).toMatchObject({ rung: 2, crc32: prepared.header.crc32 });
  });

  it('writes no rung for rung 0, and refuses a drop count that is not a whole number', () => {
    const prepared = prepareFrame(payload, { ...fields, rung: 0 });
    expect('rung' in prepared.header).toBe(false);
    expect(() => prepared.headFor(-1)).toThrow(RangeError);
    expect(() => prepared.headFor(1.5)).toThrow(RangeError);
  });
});
