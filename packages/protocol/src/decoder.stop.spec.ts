import { randomBytes } from 'node:crypto';
import { MessageDecoder, type Message } from './decoder';
import { encodeMessage } from './encoder';

// PROTOCOL.md 4.5: after an error a side decodes nothing more from that connection. A session
// that rejects a message from inside onMessage must be able to stop right there, even when the
// bytes after it (garbage, here) arrived in the same chunk.

const ping = encodeMessage({ type: 'ping', time: 1 }).head;
const bye = encodeMessage({ type: 'bye', reason: 'done' }).head;
/** 4 KiB whose first 8 bytes, read as a length, are far over any limit. */
const garbage = Buffer.concat([Buffer.alloc(8, 0xff), randomBytes(4088)]);

describe('MessageDecoder.stop', () => {
  it('called from onMessage, ends the push at that message: nothing after it is decoded', () => {
    const decoder = new MessageDecoder();
    const seen: string[] = [];
    const returned = decoder.push(Buffer.concat([ping, bye, garbage]), ({ header }) => {
      seen.push(header.type);
      if (header.type === 'ping') decoder.stop();
    });
    expect(returned).toEqual([]);
    expect(seen).toEqual(['ping']);
    expect(decoder.failed).toBeUndefined();
    expect(decoder.stopped).toBe(true);
    expect(decoder.bufferedBytes).toBe(0);
    expect(decoder.midMessage).toBe(false);
  });

  it('later pushes decode nothing and hold nothing', () => {
    const decoder = new MessageDecoder();
    decoder.stop();
    const seen: Message[] = [];
    expect(decoder.push(Buffer.concat([ping, garbage]), (m) => seen.push(m))).toEqual([]);
    expect(decoder.push(bye)).toEqual([]);
    expect(seen).toEqual([]);
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('an exception from onMessage leaves push and stops the decoder too', () => {
    const decoder = new MessageDecoder();
    const seen: string[] = [];
    const rejected = new Error('not now');
    expect(() =>
      decoder.push(Buffer.concat([ping, garbage]), ({ header }) => {
        seen.push(header.type);
        throw rejected;
      }),
    ).toThrow(rejected);
    expect(seen).toEqual(['ping']);
    expect(decoder.stopped).toBe(true);
    expect(decoder.failed).toBeUndefined();
    expect(decoder.push(bye)).toEqual([]);
  });

  it('without stop, the garbage after a message in the same chunk is still a decode error', () => {
    const decoder = new MessageDecoder();
    const seen: string[] = [];
    expect(() => decoder.push(Buffer.concat([ping, garbage]), ({ header }) => void seen.push(header.type))).toThrow(/exceeds the limit/);
    expect(seen).toEqual(['ping']);
  });
});
