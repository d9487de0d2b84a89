// An h264 receiver decodes from a keyframe on (PROTOCOL.md 4.6): the receiver's session refuses a
// sender whose first frame, or first frame on another rung, is not one.
import { frameHeader } from '../encoder';
import type { Header, StreamDescription } from '../schema';
import { ReceiverSession, type ReceiverSessionEvent } from './receiver-session';

const stream: StreamDescription = {
  width: 16,
  height: 16,
  fps: 30,
  pixelFormat: 'bgr24',
  encoding: 'h264',
  bitrate: 400_000,
  rungs: [{ width: 16, height: 16, bitrate: 240_000 }],
};

/** A streaming receiver session of that stream. */
function streaming(): ReceiverSession {
  const receiver = new ReceiverSession({ name: 'viewer' });
  const hello: Header = { type: 'hello', protocol: 'camstream', version: 2, role: 'sender', stream };
  receiver.receive({ header: hello, payload: Buffer.alloc(0) });
  return receiver;
}

function h264(seq: number, options: { keyframe?: boolean; rung?: number; dropped?: number } = {}) {
  const payload = Buffer.from([0, 0, 0, 1, 9, 0x10, 0, 0, 1, options.keyframe ? 0x65 : 0x41, 0x88]);
  return { header: frameHeader(payload, { seq, captureTime: 1000 + seq, width: 16, height: 16, channels: 3, encoding: 'h264', ...options }), payload };
}

const errorOf = (events: ReceiverSessionEvent[]) => events.find((e): e is Extract<ReceiverSessionEvent, { type: 'send' }> => e.type === 'send' && e.header.type === 'error')?.header;

describe('an h264 stream at the receiver', () => {
  it('takes a keyframe first, then the frames that follow it, and a rung change at a keyframe', () => {
    const receiver = streaming();
    const types = [h264(5, { keyframe: true }), h264(6), h264(8, { dropped: 1 }), h264(9, { rung: 1, keyframe: true, dropped: 1 }), h264(10, { rung: 1, dropped: 1 })].map(
      (frame) => receiver.receive(frame).map((e) => e.type),
    );
    expect(types).toEqual(Array(5).fill(['send', 'frame']));
    expect(receiver.streaming).toBe(true);
  });

  it('refuses a first frame that is no keyframe with ERR_STREAM_MISMATCH', () => {
    const receiver = streaming();
    expect(errorOf(receiver.receive(h264(5)))).toEqual({
      type: 'error',
      code: 'ERR_STREAM_MISMATCH',
      reason: 'frame 5 is the first of an h264 stream on this connection but no keyframe: decoding can only start at a keyframe',
    });
    expect(receiver.closed).toBe(true);
  });

  it('refuses a move to another rung that is no keyframe', () => {
    const receiver = streaming();
    receiver.receive(h264(5, { keyframe: true }));
    expect(errorOf(receiver.receive(h264(6, { rung: 1 })))).toEqual({
      type: 'error',
      code: 'ERR_STREAM_MISMATCH',
      reason: 'frame 6 moves from rung 0 to rung 1 but is no keyframe: a rung can only be joined at a keyframe',
    });
  });
});
