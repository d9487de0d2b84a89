import { frameHeader } from '../encoder';
import type { StreamDescription } from '../schema';
import { SessionError } from './session-error';
import { checkFrameAgainstStream, streamRungs } from './stream-check';

const stream: StreamDescription = {
  width: 4,
  height: 2,
  fps: 30,
  pixelFormat: 'bgr24',
  encoding: 'jpeg',
  quality: 80,
  rungs: [{ width: 4, height: 2, quality: 40 }, { width: 2, height: 1 }],
};

function jpegFrame(width: number, height: number, rung?: number) {
  return frameHeader(Buffer.from('not really a jpeg'), { seq: 7, captureTime: 0, width, height, channels: 3, encoding: 'jpeg', ...(rung ? { rung } : {}) });
}

function mismatch(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(SessionError);
    expect((error as SessionError).code).toBe('ERR_STREAM_MISMATCH');
    return (error as Error).message;
  }
  throw new Error('expected ERR_STREAM_MISMATCH');
}

describe('checkFrameAgainstStream', () => {
  it('lists rung 0 (the stream itself) before the announced rungs', () => {
    expect(streamRungs(stream)).toEqual([{ width: 4, height: 2, quality: 80 }, { width: 4, height: 2, quality: 40 }, { width: 2, height: 1 }]);
  });

  it("returns the rung of a frame that has its rung's size and the stream's encoding", () => {
    expect(checkFrameAgainstStream(jpegFrame(4, 2), stream)).toBe(0);
    expect(checkFrameAgainstStream(jpegFrame(4, 2, 1), stream)).toBe(1);
    expect(checkFrameAgainstStream(jpegFrame(2, 1, 2), stream)).toBe(2);
  });

  it('refuses another size, a rung beyond the list, another encoding or channel count, naming both sides', () => {
    expect(mismatch(() => checkFrameAgainstStream(jpegFrame(2, 1), stream))).toBe('frame 7 is 2x1x3 jpeg, but the stream was announced as 4x2x3 jpeg');
    expect(mismatch(() => checkFrameAgainstStream(jpegFrame(4, 2, 2), stream))).toBe('frame 7 is 4x2x3 jpeg, but rung 2 was announced as 2x1x3 jpeg');
    expect(mismatch(() => checkFrameAgainstStream(jpegFrame(2, 1, 3), stream))).toBe('frame 7 is on rung 3, but the stream announced 2 lower rung(s)');
    const raw = frameHeader(Buffer.alloc(4 * 2 * 3), { seq: 7, captureTime: 0, width: 4, height: 2, channels: 3, encoding: 'raw-bgr' });
    expect(mismatch(() => checkFrameAgainstStream(raw, stream))).toBe('frame 7 is 4x2x3 raw-bgr, but the stream was announced as 4x2x3 jpeg');
    const grey = frameHeader(Buffer.from('x'), { seq: 7, captureTime: 0, width: 4, height: 2, channels: 1, encoding: 'jpeg' });
    expect(mismatch(() => checkFrameAgainstStream(grey, stream))).toBe('frame 7 is 4x2x1 jpeg, but the stream was announced as 4x2x3 jpeg');
  });
});
