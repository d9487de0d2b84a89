import { MessageDecoder, type Message, type PayloadBuffers } from './decoder';
import { encodeMessage, frameHeader } from './encoder';
import { ChecksumError } from './errors';

/** A pool that records what it handed out and got back. */
class RecordingPool implements PayloadBuffers {
  readonly taken: Buffer[] = [];
  readonly given: Buffer[] = [];
  private readonly free: Buffer[] = [];
  allocations = 0;

  take(bytes: number): Buffer {
    const reused = this.free.findIndex((b) => b.length === bytes);
    const buffer = reused >= 0 ? this.free.splice(reused, 1)[0]! : (this.allocations++, Buffer.alloc(bytes));
    this.taken.push(buffer);
    return buffer;
  }

  give(buffer: Buffer): void {
    this.given.push(buffer);
    this.free.push(buffer);
  }
}

function frameBytes(seq: number, payloadBytes: number, fill = seq): Buffer {
  const payload = Buffer.alloc(payloadBytes, fill);
  const { head } = encodeMessage(frameHeader(payload, { seq, captureTime: 1, width: 100, height: 100, channels: 3, encoding: 'jpeg' }), payload);
  return Buffer.concat([head, payload]);
}

const LIMIT = 1_000_000;

describe('MessageDecoder with pooled payloads', () => {
  it('puts large frame payloads in buffers from the pool, and small ones not', () => {
    const pool = new RecordingPool();
    const decoder = new MessageDecoder({ payloadBuffers: pool, pooledPayloadMinBytes: 1000, maxFrameBytes: LIMIT });
    const [large, small] = decoder.push(Buffer.concat([frameBytes(1, 5000), frameBytes(2, 999)]));
    expect(large).toMatchObject({ pooled: true });
    expect(large!.payload).toBe(pool.taken[0]);
    expect(large!.payload.equals(Buffer.alloc(5000, 1))).toBe(true);
    expect(small!.pooled).toBeUndefined();
    expect(pool.taken).toHaveLength(1);
  });

  it('reuses a buffer given back: one allocation for a stream of frames of one size', () => {
    const pool = new RecordingPool();
    const decoder = new MessageDecoder({ payloadBuffers: pool, pooledPayloadMinBytes: 1, maxFrameBytes: LIMIT });
    const payloads: Buffer[] = [];
    for (let seq = 0; seq < 5; seq++) {
      const [message] = decoder.push(frameBytes(seq, 3000));
      expect(message!.payload.equals(Buffer.alloc(3000, seq))).toBe(true);
      payloads.push(message!.payload);
      pool.give(message!.payload);
    }
    expect(pool.allocations).toBe(1);
    expect(new Set(payloads).size).toBe(1);
  });

  it('takes nothing from the pool until a frame limit is set: a destination is sized by a header no one accepted yet', () => {
    const pool = new RecordingPool();
    const decoder = new MessageDecoder({ payloadBuffers: pool, pooledPayloadMinBytes: 1 });
    expect(decoder.push(frameBytes(1, 4000))[0]!.pooled).toBeUndefined();
    expect(pool.taken).toHaveLength(0);
    decoder.limitFrameBytes(LIMIT);
    expect(decoder.push(frameBytes(2, 4000))[0]!.pooled).toBe(true);
  });

  it('decodes the same messages split at any offset, and reports their arrival', () => {
    const bytes = Buffer.concat([frameBytes(1, 3000), frameBytes(2, 10), frameBytes(3, 2500)]);
    for (let cut = 1; cut < bytes.length; cut += 97) {
      const pool = new RecordingPool();
      const decoder = new MessageDecoder({ payloadBuffers: pool, pooledPayloadMinBytes: 2000, maxFrameBytes: LIMIT });
      const messages = [...decoder.push(bytes.subarray(0, cut), undefined, 10), ...decoder.push(bytes.subarray(cut), undefined, 25)];
      expect(messages.map((m) => [m.header.type === 'frame' && m.header.seq, m.payload.length, m.pooled ?? false])).toEqual([
        [1, 3000, true],
        [2, 10, false],
        [3, 2500, true],
      ]);
      messages.forEach((m, i) => expect(m.payload.equals(Buffer.alloc(m.payload.length, i + 1))).toBe(true));
      expect(decoder.midMessage).toBe(false);
      const first = frameBytes(1, 3000).length;
      expect(messages[0]!.arrival).toEqual(cut >= first ? { spanMs: 0, spanBytes: 0 } : { spanMs: 15, spanBytes: first - cut });
    }
  });

  it('checks the CRC-32 of a pooled payload, and keeps no failed buffer', () => {
    const pool = new RecordingPool();
    const decoder = new MessageDecoder({ payloadBuffers: pool, pooledPayloadMinBytes: 1, maxFrameBytes: LIMIT });
    const bytes = frameBytes(4, 3000);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
    expect(() => decoder.push(bytes.subarray(0, 2000))).not.toThrow();
    expect(() => decoder.push(bytes.subarray(2000))).toThrow(ChecksumError);
    expect(() => decoder.push(bytes)).toThrow(/frame 4 payload CRC-32 is 0x[0-9a-f]{8} but its header says/);
    expect(pool.given).toEqual([]);
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('hands a pooled payload over only once its last byte is written', () => {
    const pool = new RecordingPool();
    const decoder = new MessageDecoder({ payloadBuffers: pool, pooledPayloadMinBytes: 1, maxFrameBytes: LIMIT });
    const bytes = frameBytes(7, 4000);
    const seen: Message[] = [];
    decoder.push(bytes.subarray(0, bytes.length - 1), (m) => seen.push(m));
    // The destination is taken (the header was read) and nearly full, but nobody has it yet.
    expect(pool.taken).toHaveLength(1);
    expect(decoder.bufferedBytes).toBe(bytes.length - 1 - (bytes.length - 4000));
    expect(seen).toEqual([]);
    decoder.push(bytes.subarray(bytes.length - 1), (m) => seen.push(m));
    expect(seen.map((m) => m.payload)).toEqual([pool.taken[0]]);
  });
});

describe('MessageDecoder.payloadTarget: reading straight into the destination', () => {
  it('offers the unfilled rest of a pooled payload, and completes the frame when it is written', () => {
    const pool = new RecordingPool();
    const decoder = new MessageDecoder({ payloadBuffers: pool, pooledPayloadMinBytes: 1, maxFrameBytes: LIMIT });
    const bytes = frameBytes(3, 6000);
    const headBytes = bytes.length - 6000;
    expect(decoder.payloadTarget()).toBeUndefined();
    expect(decoder.push(bytes.subarray(0, headBytes + 1000), undefined, 100)).toEqual([]);

    const target = decoder.payloadTarget()!;
    expect(target.length).toBe(5000);
    expect(target.buffer).toBe(pool.taken[0]!.buffer); // a view of the destination itself
    bytes.copy(target, 0, headBytes + 1000, headBytes + 3000);
    expect(decoder.payloadWritten(2000, undefined, 104)).toEqual([]);

    const rest = decoder.payloadTarget()!;
    expect(rest.length).toBe(3000);
    bytes.copy(rest, 0, headBytes + 3000);
    const [message] = decoder.payloadWritten(3000, undefined, 109);
    expect(message!.payload).toBe(pool.taken[0]);
    expect(message!.payload.equals(Buffer.alloc(6000, 3))).toBe(true);
    expect(message!.arrival).toEqual({ spanMs: 9, spanBytes: 5000 });
    expect(decoder.payloadTarget()).toBeUndefined();
    expect(() => decoder.payloadWritten(1)).toThrow(/without a payloadTarget/);
  });

  it('checks the CRC-32 of what was written directly', () => {
    const decoder = new MessageDecoder({ payloadBuffers: new RecordingPool(), pooledPayloadMinBytes: 1, maxFrameBytes: LIMIT });
    const bytes = frameBytes(3, 6000);
    decoder.push(bytes.subarray(0, bytes.length - 6000));
    decoder.payloadTarget()!.fill(9); // not what the header's CRC-32 was computed over
    expect(() => decoder.payloadWritten(6000)).toThrow(ChecksumError);
  });

  it('after stop(), offers no target and decodes nothing more: the half-filled destination is dropped', () => {
    const pool = new RecordingPool();
    const decoder = new MessageDecoder({ payloadBuffers: pool, pooledPayloadMinBytes: 1, maxFrameBytes: LIMIT });
    const bytes = frameBytes(3, 6000);
    decoder.push(bytes.subarray(0, bytes.length - 3000));
    expect(decoder.payloadTarget()).toBeDefined();
    decoder.stop();
    expect(decoder.payloadTarget()).toBeUndefined();
    expect(decoder.payloadWritten(3000)).toEqual([]);
    expect(decoder.bufferedBytes).toBe(0);
    expect(pool.given).toEqual([]);
  });

  it('refuses to be told of more bytes than the payload has left', () => {
    const decoder = new MessageDecoder({ payloadBuffers: new RecordingPool(), pooledPayloadMinBytes: 1, maxFrameBytes: LIMIT });
    const bytes = frameBytes(3, 6000);
    decoder.push(bytes.subarray(0, bytes.length - 10));
    expect(() => decoder.payloadWritten(11)).toThrow('payloadWritten(11): the payload has 10 bytes left');
  });
});

describe('MessageDecoder with reusesChunks', () => {
  it('decodes from one read buffer overwritten after every push, and hands out no view of it', () => {
    const bytes = Buffer.concat([frameBytes(1, 3000), frameBytes(2, 10), frameBytes(3, 700)]);
    for (const readSize of [1, 7, 64, 500, 4096]) {
      const decoder = new MessageDecoder({ reusesChunks: true });
      const readBuffer = Buffer.alloc(readSize);
      const messages: Message[] = [];
      for (let at = 0; at < bytes.length; at += readSize) {
        const n = bytes.copy(readBuffer, 0, at, at + readSize);
        decoder.push(readBuffer.subarray(0, n), (m) => messages.push(m));
        readBuffer.fill(0xee); // the next read overwrites it
      }
      expect(messages.map((m) => m.payload.length)).toEqual([3000, 10, 700]);
      messages.forEach((m, i) => {
        expect(m.payload.buffer).not.toBe(readBuffer.buffer);
        expect(m.payload.equals(Buffer.alloc(m.payload.length, i + 1))).toBe(true);
      });
    }
  });
});
