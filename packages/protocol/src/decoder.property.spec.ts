// Property-based tests: the decoder must give the same messages however the stream is cut, and
// must answer any bytes at all with messages or a ProtocolError, never another exception.
import fc from 'fast-check';
import { MessageDecoder, type Message } from './decoder';
import { encodeMessage, frameHeader } from './encoder';
import { ProtocolError } from './errors';
import { type Header, parseHeader } from './schema';
import { fromHex, plain, rawMessage, splitAt } from './testing/bytes';
import { goldenVectors } from './testing/vectors';

interface Sent {
  header: Header;
  payload: Buffer;
}

const encoding = fc.constantFrom('raw-bgr' as const, 'jpeg' as const, 'png' as const);
const channels = fc.constantFrom(1 as const, 3 as const, 4 as const);

const frameMessage: fc.Arbitrary<Sent> = fc
  .record({
    seq: fc.maxSafeNat(),
    captureTime: fc.double({ min: 0, max: 4e12, noNaN: true }),
    width: fc.integer({ min: 1, max: 16 }),
    height: fc.integer({ min: 1, max: 16 }),
    channels,
    encoding,
    dropped: fc.nat(),
    randomPayload: fc.uint8Array({ maxLength: 600 }),
    fill: fc.integer({ min: 0, max: 255 }),
  })
  .map(({ randomPayload, fill, ...fields }) => {
    // A raw frame's payload must be exactly width*height*channels bytes.
    const payload =
      fields.encoding === 'raw-bgr'
        ? Buffer.alloc(fields.width * fields.height * fields.channels, fill)
        : Buffer.from(randomPayload);
    return { header: frameHeader(payload, fields), payload };
  });

const otherMessage: fc.Arbitrary<Sent> = fc
  .oneof(
    fc.string({ minLength: 1, maxLength: 1000, unit: 'binary' }).map((reason): Header => ({ type: 'bye', reason })),
    fc.record({ code: fc.string(), reason: fc.string({ unit: 'grapheme' }) }).map((e): Header => ({ type: 'error', ...e })),
    fc.option(fc.string({ maxLength: 200 }), { nil: undefined }).map(
      (name): Header => ({ type: 'hello', protocol: 'camstream', version: 2, role: 'receiver', ...(name === undefined ? {} : { name }) }),
    ),
  )
  .map((header) => ({ header, payload: Buffer.alloc(0) }));

const messages = fc.array(fc.oneof({ arbitrary: frameMessage, weight: 3 }, { arbitrary: otherMessage, weight: 1 }), {
  minLength: 1,
  maxLength: 12,
});

/** Random cut points as fractions, turned into offsets once the stream length is known. */
const cuts = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 40 });

function encodeAll(sent: readonly Sent[]): Buffer {
  return Buffer.concat(sent.flatMap(({ header, payload }) => Object.values(encodeMessage(header, payload))));
}

function cutAt(bytes: Buffer, fractions: readonly number[]): Buffer[] {
  return splitAt(bytes, fractions.map((f) => Math.floor(f * bytes.length)));
}

/** Pushes every chunk; returns what came out, or the ProtocolError. Anything else propagates. */
function feed(decoder: MessageDecoder, chunks: readonly Buffer[]): Message[] {
  const out: Message[] = [];
  try {
    for (const chunk of chunks) out.push(...decoder.push(chunk));
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    expect(decoder.failed).toBe(err);
    expect(() => decoder.push(Buffer.from([0]))).toThrow(err);
  }
  // Whatever came out is a valid message, and nothing is held beyond what was fed.
  for (const message of out) expect(() => parseHeader(message.header)).not.toThrow();
  expect(decoder.bufferedBytes).toBeLessThanOrEqual(chunks.reduce((n, c) => n + c.length, 0));
  return out;
}

describe('decoder properties', () => {
  it('decodes the same messages however the stream is chunked', () => {
    fc.assert(
      fc.property(messages, cuts, (sent, fractions) => {
        const stream = encodeAll(sent);
        const decoder = new MessageDecoder();
        const received = cutAt(stream, fractions).flatMap((chunk) => decoder.push(chunk));
        expect(decoder.midMessage).toBe(false);
        expect(received.map(plain)).toEqual(sent.map(plain));
      }),
      { numRuns: 500 },
    );
  });

  it('answers 10,000 random byte strings with messages or a ProtocolError only', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), cuts, (bytes, fractions) => {
        feed(new MessageDecoder(), cutAt(Buffer.from(bytes), fractions));
      }),
      { numRuns: 10_000 },
    );
  });

  it('answers plausible framing around random bodies with messages or a ProtocolError only', () => {
    const framed = fc.record({
      messageLength: fc.oneof(fc.integer({ min: 0, max: 400 }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })),
      headerLength: fc.oneof(fc.integer({ min: 0, max: 400 }), fc.nat()),
      header: fc.oneof(
        fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
        fc.jsonValue().map((v) => JSON.stringify(v) ?? ''),
        fc.string({ unit: 'binary' }),
      ),
      payload: fc.uint8Array({ maxLength: 100 }).map((b) => Buffer.from(b)),
    });
    fc.assert(
      fc.property(fc.array(framed, { minLength: 1, maxLength: 4 }), cuts, fc.boolean(), (parts, fractions, verifyChecksum) => {
        const stream = Buffer.concat(parts.map((p) => rawMessage(p)));
        feed(new MessageDecoder({ maxMessageBytes: 1000, maxHeaderBytes: 500, verifyChecksum }), cutAt(stream, fractions));
      }),
      { numRuns: 5_000 },
    );
  });

  it('answers random JSON headers with messages or a ProtocolError only', () => {
    const anyHeader = fc.oneof(
      fc.jsonValue(),
      fc.record({ type: fc.constantFrom('hello', 'frame', 'bye', 'error', 'ping', 'teleport'), rest: fc.dictionary(fc.string(), fc.jsonValue()) }).map(
        ({ type, rest }) => ({ ...rest, type }),
      ),
      // Valid headers with one field replaced by something random.
      fc
        .tuple(fc.constantFrom(...goldenVectors.map((v) => v.header)), fc.string(), fc.jsonValue())
        .map(([header, key, value]) => {
          const keys = Object.keys(header);
          const field = keys[key.length % keys.length] as string;
          return { ...header, [key.length % 2 === 0 ? field : key]: value };
        }),
    );
    fc.assert(
      fc.property(anyHeader, fc.uint8Array({ maxLength: 64 }), cuts, (header, payload, fractions) => {
        feed(new MessageDecoder(), cutAt(rawMessage({ header: JSON.stringify(header) ?? '', payload: Buffer.from(payload) }), fractions));
      }),
      { numRuns: 3_000 },
    );
  });

  it('answers corrupted valid streams with messages or a ProtocolError only', () => {
    const golden = Buffer.concat(goldenVectors.map((v) => fromHex(v.hex)));
    const flip = fc.record({
      at: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
      byte: fc.integer({ min: 0, max: 255 }),
    });
    const flips = fc.array(flip, { minLength: 1, maxLength: 4 });
    fc.assert(
      fc.property(flips, cuts, (changes, fractions) => {
        const stream = Buffer.from(golden);
        for (const { at, byte } of changes) stream[Math.floor(at * stream.length)] = byte;
        feed(new MessageDecoder(), cutAt(stream, fractions));
      }),
      { numRuns: 3_000 },
    );
  });
});
