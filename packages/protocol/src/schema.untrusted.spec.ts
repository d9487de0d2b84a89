import { DEFAULT_MAX_HEADER_BYTES } from './constants';
import { MessageDecoder } from './decoder';
import { ProtocolError } from './errors';
import { rawMessage } from './testing/bytes';
import { helloFromReceiver, helloFromSender } from './testing/vectors';

// Error messages quote what the peer sent, so that a person can see what was wrong. The peer
// chooses that input: whatever its size or nesting, the message stays short and is built
// without recursion, and the error is the one PROTOCOL.md names.

/** A JSON array nested `depth` levels deep, as text (JSON.parse reads it without recursing). */
const nestedArray = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
const nestedObject = (depth: number) => '{"":'.repeat(depth) + '0' + '}'.repeat(depth);

/** A header given as text, with `value` (JSON text) spliced in as the field `field`. */
function headerWith(header: object, field: string, value: string): string {
  const marker = '"__value__"';
  return JSON.stringify({ ...header, [field]: '__value__' }).replace(marker, value);
}

function decodeFailure(header: string): ProtocolError {
  const bytes = rawMessage({ header });
  expect(bytes.length).toBeLessThanOrEqual(12 + DEFAULT_MAX_HEADER_BYTES);
  try {
    new MessageDecoder().push(bytes);
  } catch (err) {
    return err as ProtocolError;
  }
  throw new Error('the header was accepted');
}

/** Longest error message any of these may produce: a line in a log, not a copy of the input. */
const MAX_MESSAGE_CHARS = 1000;

describe('hostile JSON in a header', () => {
  const hello = helloFromReceiver.header;

  it.each([5_000, 30_000])('a hello whose name is an array nested %i deep is ERR_SCHEMA with a short message', (depth) => {
    const error = decodeFailure(headerWith(hello, 'name', nestedArray(depth)));
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error.code).toBe('ERR_SCHEMA');
    expect(error.message).toMatch(/^invalid "hello" header: name: .*expected string/);
    expect(error.message.length).toBeLessThanOrEqual(MAX_MESSAGE_CHARS);
  });

  it('an object nested 12,000 deep in a sender hello is ERR_SCHEMA with a short message', () => {
    const stream = (helloFromSender.header as { stream: object }).stream;
    const error = decodeFailure(headerWith({ ...helloFromSender.header, stream: { ...stream, source: 'x' } }, 'name', nestedObject(12_000)));
    expect(error.code).toBe('ERR_SCHEMA');
    expect(error.message.length).toBeLessThanOrEqual(MAX_MESSAGE_CHARS);
  });

  it('a deeply nested version is ERR_VERSION with a short message', () => {
    const error = decodeFailure(headerWith(hello, 'version', nestedArray(20_000)));
    expect(error.code).toBe('ERR_VERSION');
    expect(error.message).toMatch(/^peer speaks protocol "camstream" version \[/);
    expect(error.message.length).toBeLessThanOrEqual(MAX_MESSAGE_CHARS);
  });

  it('long strings and many unknown keys are quoted only in part', () => {
    const longName = decodeFailure(JSON.stringify({ ...hello, name: 'n'.repeat(60_000) }));
    expect(longName.code).toBe('ERR_SCHEMA');
    expect(longName.message).toContain('name:');
    expect(longName.message.length).toBeLessThanOrEqual(MAX_MESSAGE_CHARS);

    const keys = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`${'k'.repeat(100)}${i}`, i]));
    const unknownKeys = decodeFailure(JSON.stringify({ ...hello, ...keys }));
    expect(unknownKeys.code).toBe('ERR_SCHEMA');
    expect(unknownKeys.message).toContain('Unrecognized key');
    expect(unknownKeys.message.length).toBeLessThanOrEqual(MAX_MESSAGE_CHARS);
  });

  it('a wide array as a field value is quoted only in part', () => {
    const wide = JSON.stringify(Array.from({ length: 3_000 }, (_, i) => [i, { i }]));
    const error = decodeFailure(headerWith(hello, 'name', wide));
    expect(error.code).toBe('ERR_SCHEMA');
    expect(error.message).toContain('(got [[0,{...}],[1,{...}],');
    expect(error.message.length).toBeLessThanOrEqual(MAX_MESSAGE_CHARS);
  });
});
