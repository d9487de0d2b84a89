import { MessageDecoder } from './decoder';
import { encodeMessage, frameHeader } from './encoder';

function frameBytes(payloadBytes: number): Buffer {
  const payload = Buffer.alloc(payloadBytes, 7);
  const { head } = encodeMessage(frameHeader(payload, { seq: 1, captureTime: 1, width: 100, height: 100, channels: 3, encoding: 'jpeg' }), payload);
  return Buffer.concat([head, payload]);
}

describe('MessageDecoder arrival timing', () => {
  it('measures from the push holding the first byte to the push completing the message', () => {
    const bytes = frameBytes(10_000);
    const decoder = new MessageDecoder();
    expect(decoder.push(bytes.subarray(0, 1000), undefined, 100)).toEqual([]);
    expect(decoder.push(bytes.subarray(1000, 6000), undefined, 104)).toEqual([]);
    const [message] = decoder.push(bytes.subarray(6000), undefined, 110);
    expect(message?.arrival).toEqual({ spanMs: 10, spanBytes: bytes.length - 1000 });
  });

  it('counts a message that shares its first chunk with the end of the previous one from that chunk', () => {
    const a = frameBytes(500);
    const b = frameBytes(2000);
    const decoder = new MessageDecoder();
    const first = decoder.push(Buffer.concat([a, b.subarray(0, 300)]), undefined, 50);
    expect(first[0]?.arrival).toEqual({ spanMs: 0, spanBytes: 0 });
    const [second] = decoder.push(b.subarray(300), undefined, 58);
    expect(second?.arrival).toEqual({ spanMs: 8, spanBytes: b.length - 300 });
  });

  it('reports a whole message in one chunk as no span, and nothing without times', () => {
    const bytes = frameBytes(3000);
    expect(new MessageDecoder().push(bytes, undefined, 5)[0]?.arrival).toEqual({ spanMs: 0, spanBytes: 0 });
    expect(new MessageDecoder().push(bytes)[0]?.arrival).toBeUndefined();
  });
});
