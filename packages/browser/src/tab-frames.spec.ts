import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  decodeTabFrameHeader,
  encodeTabFrameHeader,
  FRAGMENT_BYTES,
  parseTabAck,
  TAB_FRAME_HEADER_BYTES,
  tabFragmentBytes,
  tabFrameMessages,
  type TabFrameHeader,
} from './tab-frames';

const EXAMPLE: TabFrameHeader = { seq: 1234, captureTime: 1700000000123.5, width: 960, height: 540, rung: 3, dropped: 7, payloadBytes: 30000, codec: 'jpeg', keyframe: false };

describe('tab frame header', () => {
  it('round-trips every field, fractional capture time and large seq included', () => {
    const header = { ...EXAMPLE, seq: 2 ** 40 + 3, captureTime: 1764500000000.125 };
    expect(decodeTabFrameHeader(encodeTabFrameHeader(header))).toEqual(header);
    const keyframe: TabFrameHeader = { ...EXAMPLE, rung: 0, codec: 'h264', keyframe: true };
    expect(decodeTabFrameHeader(encodeTabFrameHeader(keyframe))).toEqual(keyframe);
  });

  it('reads a 32-byte header (before the codec byte) as JPEG, and refuses an unknown codec', () => {
    const old = Buffer.from(encodeTabFrameHeader(EXAMPLE).subarray(0, 32));
    old.writeUInt16BE(32, 2);
    expect(decodeTabFrameHeader(old)).toEqual(EXAMPLE);
    const unknown = encodeTabFrameHeader(EXAMPLE);
    unknown[32] = 7;
    expect(() => decodeTabFrameHeader(unknown)).toThrow('frame codec 7, expected 0 (JPEG) or 1 (H.264)');
  });

  it('refuses another version, a short message and a header length beyond the message', () => {
    const bytes = encodeTabFrameHeader(EXAMPLE);
    expect(() => decodeTabFrameHeader(bytes.subarray(0, 3))).toThrow('at least 4 bytes, got 3');
    const v2 = Buffer.from(bytes);
    v2[0] = 2;
    expect(() => decodeTabFrameHeader(v2)).toThrow('frame header version 2, expected 1');
    expect(() => decodeTabFrameHeader(bytes.subarray(0, 20))).toThrow('frame header of 36 bytes in a message of 20');
  });

  it('is what WEBSOCKET.md says, byte for byte', () => {
    const doc = readFileSync(join(__dirname, '..', 'WEBSOCKET.md'), 'utf8');
    const block = /<!-- header-example:start -->([\s\S]*?)<!-- header-example:end -->/.exec(doc)?.[1];
    if (!block) throw new Error('WEBSOCKET.md has no header example');
    const hex = block.replace(/```/g, '').trim().split(/\s+/).join('');
    expect(encodeTabFrameHeader(EXAMPLE).toString('hex')).toBe(hex);
    expect(doc).toContain('`n = 30036`, `f = 7509`: four messages of 7509 bytes');
    expect(tabFrameMessages(EXAMPLE, Buffer.alloc(30000)).map((m) => m.length)).toEqual([7509, 7509, 7509, 7509]);
  });
});

describe('tabFrameMessages', () => {
  function payload(length: number): Buffer {
    const bytes = Buffer.alloc(length);
    for (let i = 0; i < length; i++) bytes[i] = (i * 7 + 3) & 0xff;
    return bytes;
  }

  it.each([0, 1, 991, 992, 993, 2000, 4064, 4065, 30_000, 65_504, 65_505, 100_000, 1_000_000])(
    'cuts a %i-byte JPEG into messages of at most 16 KiB that rebuild it exactly',
    (length) => {
      const jpeg = payload(length);
      const messages = tabFrameMessages({ ...EXAMPLE, payloadBytes: length }, jpeg);
      const fragment = tabFragmentBytes(TAB_FRAME_HEADER_BYTES + length);
      expect(messages.every((m) => m.length <= FRAGMENT_BYTES)).toBe(true);
      expect(messages.slice(0, -1).every((m) => m.length === fragment)).toBe(true);
      expect(messages).toHaveLength(Math.max(1, Math.ceil((TAB_FRAME_HEADER_BYTES + length) / fragment)));
      expect(decodeTabFrameHeader(messages[0]!).payloadBytes).toBe(length);
      const rebuilt = Buffer.concat([messages[0]!.subarray(TAB_FRAME_HEADER_BYTES), ...messages.slice(1)]);
      expect(rebuilt.equals(jpeg)).toBe(true);
    },
  );

  it('cuts frames of 4 KiB to 64 KiB into 4 messages, so that the page can time their arrival', () => {
    for (const n of [4097, 10_000, 40_000, 65_536]) expect(Math.ceil(n / tabFragmentBytes(n))).toBe(4);
    expect(tabFragmentBytes(1000)).toBe(1024);
    expect(tabFragmentBytes(1_000_000)).toBe(FRAGMENT_BYTES);
  });

  it('copies only the first message: the others are views into the JPEG', () => {
    const jpeg = payload(50_000);
    const [first, ...rest] = tabFrameMessages({ ...EXAMPLE, payloadBytes: jpeg.length }, jpeg);
    expect(first!.buffer).not.toBe(jpeg.buffer);
    for (const message of rest) expect(message.buffer).toBe(jpeg.buffer);
  });
});

describe('parseTabAck', () => {
  it('takes a well-formed ack', () => {
    expect(parseTabAck('{"type":"ack","seq":5,"spanMs":12.25,"spanBytes":9000}')).toEqual({ type: 'ack', seq: 5, spanMs: 12.25, spanBytes: 9000 });
  });

  it.each([
    ['not json', /not JSON/],
    ['[]', /expected \{"type":"ack"/],
    ['null', /expected \{"type":"ack"/],
    ['{"type":"bye"}', /expected \{"type":"ack"/],
    ['{"type":"ack","spanMs":0,"spanBytes":0}', /seq must be a non-negative integer, got undefined/],
    ['{"type":"ack","seq":1.5,"spanMs":0,"spanBytes":0}', /seq must be a non-negative integer, got 1.5/],
    ['{"type":"ack","seq":1,"spanMs":-1,"spanBytes":0}', /spanMs must be a finite number >= 0, got -1/],
    ['{"type":"ack","seq":1,"spanMs":"5","spanBytes":0}', /spanMs must be a finite number >= 0, got "5"/],
    ['{"type":"ack","seq":1,"spanMs":0,"spanBytes":1e400}', /spanBytes must be a non-negative integer, got Infinity/],
  ])('refuses %s, naming what is wrong', (text, message) => {
    expect(() => parseTabAck(text)).toThrow(message);
  });
});
