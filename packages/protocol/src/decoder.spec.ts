import { z } from 'zod';
import { DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_MESSAGE_BYTES } from './constants';
import { type DecoderOptions, MessageDecoder } from './decoder';
import { encodeMessage, frameHeader } from './encoder';
import { ProtocolError, type ProtocolErrorCode } from './errors';
import type { FrameHeader } from './schema';
import { byteByByte, decodeChunks, fromHex, plain, rawMessage, splitAt } from './testing/bytes';
import { goldenVectors, helloFromReceiver, helloFromSender, jpegFrame, rawFrame } from './testing/vectors';

const expected = (vector: (typeof goldenVectors)[number]) => ({ header: vector.header, payload: vector.payloadHex });

describe('golden vectors', () => {
  describe.each(goldenVectors.map((v) => [v.name, v] as const))('%s', (_name, vector) => {
    const bytes = fromHex(vector.hex);

    it('decodes when fed whole', () => {
      expect(decodeChunks([bytes]).map(plain)).toEqual([expected(vector)]);
    });

    it('decodes when split in two at every offset', () => {
      for (let cut = 1; cut < bytes.length; cut++) {
        expect(decodeChunks(splitAt(bytes, [cut])).map(plain)).toEqual([expected(vector)]);
      }
    });

    it('decodes when fed byte by byte', () => {
      expect(decodeChunks(byteByByte(bytes)).map(plain)).toEqual([expected(vector)]);
    });
  });

  describe('all of them in one stream', () => {
    const stream = Buffer.concat(goldenVectors.map((v) => fromHex(v.hex)));
    const all = goldenVectors.map(expected);

    it('decodes when fed whole', () => {
      expect(decodeChunks([stream]).map(plain)).toEqual(all);
    });

    it('decodes when split in two at every offset', () => {
      for (let cut = 1; cut < stream.length; cut++) {
        expect(decodeChunks(splitAt(stream, [cut])).map(plain)).toEqual(all);
      }
    });

    it('decodes when fed byte by byte', () => {
      expect(decodeChunks(byteByByte(stream)).map(plain)).toEqual(all);
    });

    it('decodes in chunks of every size from 1 to 64 bytes', () => {
      for (let size = 1; size <= 64; size++) {
        const offsets = Array.from({ length: Math.ceil(stream.length / size) }, (_, i) => i * size);
        expect(decodeChunks(splitAt(stream, offsets)).map(plain)).toEqual(all);
      }
    });
  });
});

describe('MessageDecoder buffering', () => {
  const frame = fromHex(jpegFrame.hex);

  it('reports bytes held and midMessage while a message is unfinished (truncation)', () => {
    const decoder = new MessageDecoder();
    expect(decoder.midMessage).toBe(false);
    expect(decoder.push(frame.subarray(0, 5))).toEqual([]);
    expect(decoder.midMessage).toBe(true);
    expect(decoder.bufferedBytes).toBe(5);
    expect(decoder.push(frame.subarray(5, frame.length - 1))).toEqual([]);
    expect(decoder.midMessage).toBe(true); // the connection closing now means a truncated message
    expect(decoder.push(frame.subarray(frame.length - 1))).toHaveLength(1);
    expect(decoder.midMessage).toBe(false);
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('holds the start of the next message after completing one', () => {
    const decoder = new MessageDecoder();
    const messages = decoder.push(Buffer.concat([frame, frame.subarray(0, 3)]));
    expect(messages).toHaveLength(1);
    expect(decoder.bufferedBytes).toBe(3);
    expect(decoder.midMessage).toBe(true);
  });

  it('ignores empty chunks', () => {
    const decoder = new MessageDecoder();
    expect(decoder.push(Buffer.alloc(0))).toEqual([]);
    expect(decoder.midMessage).toBe(false);
    expect(decoder.push(frame)).toHaveLength(1);
  });

  it('gives empty payloads as zero-length buffers', () => {
    const [message] = decodeChunks([fromHex(helloFromSender.hex)]);
    expect(Buffer.isBuffer(message?.payload)).toBe(true);
    expect(message?.payload.length).toBe(0);
  });

  it('returns a view of the chunk when the payload lies in one chunk', () => {
    const chunk = Buffer.from(frame);
    const [message] = new MessageDecoder().push(chunk);
    expect(message?.payload.buffer).toBe(chunk.buffer);
  });

  it('copies a payload spanning chunks exactly once, with no Buffer.concat', () => {
    const payload = Buffer.alloc(3000, 0xab);
    const header = frameHeader(payload, { seq: 1, captureTime: 5, width: 10, height: 100, channels: 3, encoding: 'raw-bgr' });
    const { head } = encodeMessage(header, payload);
    const bytes = Buffer.concat([head, payload]);
    const chunks = splitAt(bytes, [head.length, head.length + 1000, head.length + 2000]);

    const allocUnsafe = jest.spyOn(Buffer, 'allocUnsafe');
    const concat = jest.spyOn(Buffer, 'concat');
    try {
      const decoder = new MessageDecoder();
      const messages = chunks.flatMap((chunk) => decoder.push(chunk));
      expect(messages).toHaveLength(1);
      expect(allocUnsafe.mock.calls).toEqual([[3000]]);
      expect(concat).not.toHaveBeenCalled();
    } finally {
      allocUnsafe.mockRestore();
      concat.mockRestore();
    }
  });

  it('never changes an emitted payload when later bytes arrive', () => {
    const decoder = new MessageDecoder();
    const stream = Buffer.concat([frame, frame, frame]);
    const chunks = splitAt(stream, [10, frame.length - 3, frame.length + 40, 2 * frame.length - 2]);
    const payloads = chunks.flatMap((chunk) => decoder.push(chunk)).map((m) => m.payload);
    expect(payloads.map((p) => p.toString('hex'))).toEqual(Array(3).fill(jpegFrame.payloadHex));
  });

  it('stays linear when a large payload arrives one byte at a time', () => {
    const payload = Buffer.alloc(1 << 20, 7);
    const header = frameHeader(payload, { seq: 0, captureTime: 0, width: 1024, height: 1024, channels: 1, encoding: 'raw-bgr' });
    const { head } = encodeMessage(header, payload);
    const bytes = Buffer.concat([head, payload]);
    const decoder = new MessageDecoder();
    const messages = [];
    for (let i = 0; i < bytes.length; i++) messages.push(...decoder.push(bytes.subarray(i, i + 1)));
    expect(messages).toHaveLength(1);
    expect(messages[0]?.payload.equals(payload)).toBe(true);
  });
});

describe('limits', () => {
  it('refuses a 2^64-1 length from the first 8 bytes alone, without allocating', () => {
    const spies = (['alloc', 'allocUnsafe', 'allocUnsafeSlow', 'concat'] as const).map((name) => jest.spyOn(Buffer, name));
    const chunks = byteByByte(Buffer.alloc(8, 0xff)); // built before spying begins
    spies.forEach((spy) => spy.mockClear());
    try {
      const decoder = new MessageDecoder();
      for (const chunk of chunks.slice(0, 7)) expect(decoder.push(chunk)).toEqual([]);
      expect(() => decoder.push(chunks[7] as Buffer)).toThrow(
        'message length 18446744073709551615 exceeds the limit of 67108864 bytes',
      );
      expect(decoder.failed?.code).toBe('ERR_TOO_LARGE');
      for (const spy of spies) expect(spy).not.toHaveBeenCalled();
    } finally {
      spies.forEach((spy) => spy.mockRestore());
    }
  });

  it('refuses a length one over the default limit and accepts one at it', () => {
    const over = Buffer.alloc(8);
    over.writeBigUInt64BE(BigInt(DEFAULT_MAX_MESSAGE_BYTES + 1));
    expectFailure(
      [over],
      'ERR_TOO_LARGE',
      `message length ${DEFAULT_MAX_MESSAGE_BYTES + 1} exceeds the limit of ${DEFAULT_MAX_MESSAGE_BYTES} bytes`,
    );
    const at = Buffer.alloc(8);
    at.writeBigUInt64BE(BigInt(DEFAULT_MAX_MESSAGE_BYTES));
    expect(new MessageDecoder().push(at)).toEqual([]);
  });

  it('honours a larger maxMessageBytes', () => {
    const big = Buffer.alloc(8);
    big.writeBigUInt64BE(BigInt(DEFAULT_MAX_MESSAGE_BYTES * 2));
    expect(new MessageDecoder({ maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES * 2 }).push(big)).toEqual([]);
  });

  it('reads the high half of the length: 2^32 fits a limit of 2^32, 2^32 + 1 does not', () => {
    const length = (n: bigint) => {
      const prefix = Buffer.alloc(8);
      prefix.writeBigUInt64BE(n);
      return prefix;
    };
    expect(new MessageDecoder({ maxMessageBytes: 2 ** 32 }).push(length(2n ** 32n))).toEqual([]);
    expectFailure([length(2n ** 32n + 1n)], 'ERR_TOO_LARGE', 'message length 4294967297 exceeds the limit of 4294967296 bytes', {
      maxMessageBytes: 2 ** 32,
    });
    expectFailure([length(2n ** 53n + 1n)], 'ERR_TOO_LARGE', 'message length 9007199254740993 exceeds');
  });

  it('refuses a message too short to hold the header length', () => {
    expectFailure(
      [rawMessage({ header: '', messageLength: 3 })],
      'ERR_LENGTH_MISMATCH',
      'message length 3 is shorter than the 4-byte header length field',
    );
  });

  it('refuses a header length beyond the message', () => {
    expectFailure(
      [rawMessage({ header: '{}', headerLength: 20 }).subarray(0, 12)],
      'ERR_LENGTH_MISMATCH',
      'header length 20 exceeds the 2 bytes left in a message of length 6',
    );
  });

  it('refuses a header length over the limit before the header arrives', () => {
    const prefix = rawMessage({ header: '', messageLength: 1_000_000, headerLength: DEFAULT_MAX_HEADER_BYTES + 1 }).subarray(0, 12);
    expectFailure(
      [prefix],
      'ERR_TOO_LARGE',
      `header length ${DEFAULT_MAX_HEADER_BYTES + 1} exceeds the limit of ${DEFAULT_MAX_HEADER_BYTES} bytes`,
    );
    expectFailure([rawMessage({ header: '{"type":"bye","reason":"x"}' })], 'ERR_TOO_LARGE', 'header length 27 exceeds the limit of 10 bytes', {
      maxHeaderBytes: 10,
    });
  });

  it('refuses a frame over maxFrameBytes before its payload arrives', () => {
    const whole = fromHex(jpegFrame.hex);
    const withoutPayload = whole.subarray(0, whole.length - 8);
    expectFailure([withoutPayload], 'ERR_TOO_LARGE', 'frame 7 payload of 8 bytes exceeds the frame limit of 4 bytes', { maxFrameBytes: 4 });
  });

  it('rejects invalid options', () => {
    expect(() => new MessageDecoder({ maxMessageBytes: -1 })).toThrow(RangeError);
    expect(() => new MessageDecoder({ maxHeaderBytes: 1.5 })).toThrow(RangeError);
    expect(() => new MessageDecoder({ maxMessageBytes: 2 ** 60 })).toThrow(RangeError);
  });
});

describe('hostile headers', () => {
  const frameFields: FrameHeader = { ...(jpegFrame.header as FrameHeader) };
  const payload = fromHex(jpegFrame.payloadHex);

  it('bad UTF-8 is ERR_BAD_HEADER', () => {
    expectFailure([rawMessage({ header: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]) })], 'ERR_BAD_HEADER', 'header (4 bytes) is not valid UTF-8');
    // An overlong encoding of '/', which a lenient decoder would accept.
    expectFailure([rawMessage({ header: Buffer.from([0x22, 0xc0, 0xaf, 0x22]) })], 'ERR_BAD_HEADER', 'not valid UTF-8');
  });

  it('bad JSON is ERR_BAD_HEADER', () => {
    expectFailure([rawMessage({ header: '{"type":' })], 'ERR_BAD_HEADER', 'header (8 bytes) is not valid JSON');
    expectFailure([rawMessage({ header: '' })], 'ERR_BAD_HEADER', 'header (0 bytes) is not valid JSON');
    expectFailure([rawMessage({ header: '\ufeff{"type":"bye","reason":"x"}' })], 'ERR_BAD_HEADER', 'not valid JSON');
  });

  it.each(['[1,2]', '42', 'null', '"frame"', 'true'])('JSON %s that is not an object is ERR_SCHEMA', (json) => {
    expectFailure([rawMessage({ header: json })], 'ERR_SCHEMA', 'header is not a JSON object');
  });

  it('wrong field types are ERR_SCHEMA naming the field', () => {
    const error = expectFailure([rawMessage({ header: { ...frameFields, seq: '7' }, payload })], 'ERR_SCHEMA', 'invalid "frame" header: seq:');
    expect(error.message).toContain('(got "7")');
  });

  it('an unknown type is ERR_SCHEMA naming it', () => {
    expectFailure([rawMessage({ header: { type: 'teleport' } })], 'ERR_SCHEMA', `invalid "teleport" header: type: Invalid discriminator value`);
    expectFailure([rawMessage({ header: { reason: 'no type' } })], 'ERR_SCHEMA', 'invalid header: type:');
  });

  it('an unknown extra field is ERR_SCHEMA naming it', () => {
    expectFailure([rawMessage({ header: { ...frameFields, extra: 1 }, payload })], 'ERR_SCHEMA', 'Unrecognized key: "extra"');
    expectFailure([rawMessage({ header: '{"type":"bye","reason":"x","__proto__":{}}' })], 'ERR_SCHEMA', 'Unrecognized key: "__proto__"');
  });

  it('keeps the zod error as the cause of a schema error', () => {
    const error = expectFailure([rawMessage({ header: { ...frameFields, channels: 2 }, payload })], 'ERR_SCHEMA', 'channels:');
    expect(error.cause).toBeInstanceOf(z.ZodError);
    expect((error.cause as z.ZodError).issues[0]?.path).toEqual(['channels']);
  });

  it('a payload length that disagrees with the header is ERR_LENGTH_MISMATCH', () => {
    expectFailure(
      [rawMessage({ header: frameFields, payload: payload.subarray(0, 5) })],
      'ERR_LENGTH_MISMATCH',
      'frame 7 carries 5 payload bytes but its header says payloadLength 8',
    );
  });

  it('a raw-bgr payloadLength other than width*height*channels is ERR_LENGTH_MISMATCH', () => {
    const header = { ...(rawFrame.header as FrameHeader), height: 2 };
    expectFailure(
      [rawMessage({ header, payload: fromHex(rawFrame.payloadHex) })],
      'ERR_LENGTH_MISMATCH',
      'raw-bgr frame 0 is 2x2x3 = 12 bytes but its header says payloadLength 6',
    );
  });

  it('a CRC mismatch is ERR_CHECKSUM, unless verifyChecksum is false', () => {
    const header = { ...frameFields, crc32: 1 };
    const bytes = rawMessage({ header, payload });
    expectFailure([bytes], 'ERR_CHECKSUM', 'frame 7 payload CRC-32 is 0xdf53d5b2 but its header says 0x00000001');
    const [message] = new MessageDecoder({ verifyChecksum: false }).push(bytes);
    expect(message?.header).toEqual(header);
  });

  it('a hello of another version or protocol is ERR_VERSION', () => {
    const hello = helloFromReceiver.header;
    expectFailure(
      [rawMessage({ header: { ...hello, version: 1 } })],
      'ERR_VERSION',
      'peer speaks protocol "camstream" version 1, this side speaks "camstream" version 2',
    );
    expectFailure([rawMessage({ header: { ...hello, protocol: 'other' } })], 'ERR_VERSION', 'peer speaks protocol "other" version 2');
    // A newer hello may carry fields this version does not know: still a version error.
    expectFailure([rawMessage({ header: { ...hello, version: 3, auth: { token: 'x' } } })], 'ERR_VERSION', 'version 3');
  });

  it('a hello, bye or error with a payload is ERR_LENGTH_MISMATCH', () => {
    for (const header of [helloFromSender.header, { type: 'bye', reason: 'done' }, { type: 'error', code: 'E', reason: 'r' }]) {
      const bytes = rawMessage({ header, payload: Buffer.from([1]) });
      expectFailure([bytes], 'ERR_LENGTH_MISMATCH', `${header.type} message has 1 payload bytes but must have none`);
    }
  });

  it('stays failed: every later push throws the same error and nothing is held', () => {
    const decoder = new MessageDecoder();
    expect(() => decoder.push(rawMessage({ header: 'nope' }))).toThrow(ProtocolError);
    const first = decoder.failed;
    expect(first?.code).toBe('ERR_BAD_HEADER');
    expect(decoder.bufferedBytes).toBe(0);
    expect(decoder.midMessage).toBe(false);
    for (const chunk of [fromHex(jpegFrame.hex), Buffer.alloc(0), Buffer.from([0])]) {
      let thrown: unknown;
      try {
        decoder.push(chunk);
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBe(first);
    }
  });

  it('fails on the bad message even when good messages come before it in the same chunk', () => {
    const decoder = new MessageDecoder();
    expect(() => decoder.push(Buffer.concat([fromHex(jpegFrame.hex), rawMessage({ header: '{' })]))).toThrow('not valid JSON');
  });
});

/** Feeds chunks to a fresh decoder, expects a ProtocolError with `code` whose message contains `text`. */
function expectFailure(chunks: Buffer[], code: ProtocolErrorCode, text: string, options?: DecoderOptions): ProtocolError {
  const decoder = new MessageDecoder(options);
  let thrown: unknown;
  try {
    for (const chunk of chunks) decoder.push(chunk);
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(ProtocolError);
  const error = thrown as ProtocolError;
  expect(error.code).toBe(code);
  expect(error.message).toContain(text);
  expect(decoder.failed).toBe(error);
  return error;
}

describe('limits set while decoding', () => {
  it('applies limitFrameBytes from onMessage to the next message in the same chunk', () => {
    const hello = encodeMessage({ type: 'bye', reason: 'stands in for a hello' });
    const payload = Buffer.alloc(5000, 1);
    const frame = encodeMessage(
      frameHeader(payload, { seq: 0, captureTime: 1, width: 100, height: 100, channels: 3, encoding: 'jpeg' }),
      payload,
    );
    const decoder = new MessageDecoder();
    const seen: string[] = [];
    const oneChunk = Buffer.concat([hello.head, frame.head, frame.payload.subarray(0, 10)]);
    expect(() =>
      decoder.push(oneChunk, ({ header }) => {
        seen.push(header.type);
        decoder.limitFrameBytes(1000);
      }),
    ).toThrow('frame 0 payload of 5000 bytes exceeds the frame limit of 1000 bytes');
    expect(seen).toEqual(['bye']);
  });

  it('without a callback returns the messages as before', () => {
    const bye = encodeMessage({ type: 'bye', reason: 'done' }).head;
    expect(new MessageDecoder().push(Buffer.concat([bye, bye])).map((m) => m.header.type)).toEqual(['bye', 'bye']);
  });
});
