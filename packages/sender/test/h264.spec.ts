import { H264Decoder } from '@camstream/ffmpeg';
import { FakeCamera, readFrameNumber } from '@camstream/testkit';
import { startSender, until } from './sender-harness';
import { TestReceiver, type ReceivedFrame } from './test-receiver';

// The sender's H.264 end to end over real loopback sockets, with real x264 encoders (ffmpeg) and a
// real decoder on the receiving side: every frame a receiver gets must decode, to the picture the
// fake camera captured (its frame number survives compression), whatever the receiver does.

jest.setTimeout(60_000);

const WIDTH = 320;
const HEIGHT = 240;
const BITRATE = 600_000;

/** Decodes every received frame in order with one decoder; returns the frame number each picture shows. */
async function decodeAll(frames: readonly ReceivedFrame[]): Promise<Array<number | null>> {
  const decoder = new H264Decoder({ width: WIDTH, height: HEIGHT });
  try {
    const numbers: Array<number | null> = [];
    for (const frame of frames) {
      const decoded = await decoder.decode(frame.payload);
      expect(decoded.damaged).toBe(false);
      numbers.push(readFrameNumber(decoded.image));
    }
    return numbers;
  } finally {
    await decoder.close();
  }
}

/** Between any two frames the drops declared are exactly the frames missing, and a frame after a gap is a keyframe. */
function expectDropsDeclaredAtKeyframes(frames: readonly ReceivedFrame[]): void {
  for (let i = 1; i < frames.length; i++) {
    const [before, frame] = [frames[i - 1]!.header, frames[i]!.header];
    const missing = frame.seq - before.seq - 1;
    expect({ seq: frame.seq, declared: frame.dropped - before.dropped }).toEqual({ seq: frame.seq, declared: missing });
    if (missing > 0) expect({ seq: frame.seq, keyframe: frame.keyframe }).toEqual({ seq: frame.seq, keyframe: true });
  }
  expect(frames.every((f) => f.undeclaredGap === 0)).toBe(true);
}

describe('an h264 stream', () => {
  it('starts at a keyframe and decodes, frame by frame, to the pictures captured; one encoder for every receiver of a rung', async () => {
    const frames = 45;
    const camera = new FakeCamera({ width: WIDTH, height: HEIGHT, fps: 30, frames });
    await using sender = await startSender(camera, 'h264', { bitrate: BITRATE });
    expect(sender.broadcast.stream).toMatchObject({ encoding: 'h264', bitrate: BITRATE, rungs: [{ bitrate: 360_000 }, { bitrate: 210_000 }, { bitrate: 120_000 }] });
    // Its viewers change rungs as an inter-coded stream's must (RungChooser, interCoded).
    expect(sender.broadcast.interCoded).toBe(true);
    const receivers = await Promise.all([1, 2, 3].map((i) => TestReceiver.connect({ port: sender.server.port, name: `viewer ${i}` })));
    await until(() => sender.server.viewerList.length === 3, 'three viewers');
    expect(await sender.pump()).toBe('source-ended');
    for (const receiver of receivers) {
      await receiver.until(() => receiver.frames.length === frames, `${frames} frames`);
      expect(receiver.frames[0]!.header.keyframe).toBe(true);
      expect(receiver.frames.slice(1).some((f) => f.header.keyframe)).toBe(false); // the next one is due at frame 60
      expect(receiver.frames.map((f) => f.header.seq)).toEqual([...Array(frames).keys()]);
      expect(receiver.end).toBeUndefined();
    }
    expect(await decodeAll(receivers[0]!.frames)).toEqual([...Array(frames).keys()]);
    // All three got the same bytes from one encoder.
    expect(receivers[1]!.frames[10]!.payload.equals(receivers[0]!.frames[10]!.payload)).toBe(true);
    expect(sender.broadcast.h264Rungs!.started).toBe(1);
    expect(sender.broadcast.h264Rungs!.runningRungs).toEqual([0]);
    await Promise.all(receivers.map((r) => r.leave()));
  });

  it('gives a late joiner the frames since the last keyframe at once, then the live ones, all decodable', async () => {
    const camera = new FakeCamera({ width: WIDTH, height: HEIGHT, fps: 30 });
    await using sender = await startSender(camera, 'h264', { bitrate: BITRATE });
    const first = await TestReceiver.connect({ port: sender.server.port, name: 'first' });
    await first.until(() => first.stream !== undefined, 'the stream');
    void sender.pump();
    await first.until(() => first.frames.length >= 30, '30 frames');
    const late = await TestReceiver.connect({ port: sender.server.port, name: 'late' });
    const joinedAt = first.frames.length;
    await late.until(() => late.frames.length >= joinedAt + 10, 'the late joiner to catch up');
    await sender.stopPump();
    // Its first frame is the keyframe the first receiver started with: frame 0, no drop on the way.
    expect(late.frames[0]!.header).toMatchObject({ seq: 0, keyframe: true, dropped: 0 });
    expect(late.frames.map((f) => f.header.seq)).toEqual([...Array(late.frames.length).keys()]);
    expect(await decodeAll(late.frames)).toEqual(late.frames.map((f) => f.header.seq));
    await Promise.all([first.leave(), late.leave()]);
  });

  it('makes a slow receiver skip to keyframes, with exactly the drops declared, and never sends it a frame it cannot decode', async () => {
    // 5 s of stream. A keyframe every half second; the receiver acknowledges each frame 120 ms after
    // the one before. The first window (before any measurement) lets about a second of frames in;
    // their acks take about 3 s, and from then on the slow receiver must skip to keyframes.
    const frames = 150;
    const camera = new FakeCamera({ width: WIDTH, height: HEIGHT, fps: 30, frames });
    await using sender = await startSender(camera, 'h264', { bitrate: BITRATE, h264: { keyframeIntervalSeconds: 0.5 }, server: { adapt: false } });
    const slow = await TestReceiver.connect({ port: sender.server.port, name: 'slow', ackDelayMs: 120 });
    await slow.until(() => slow.stream !== undefined, 'the stream');
    expect(await sender.pump()).toBe('source-ended');
    const viewer = sender.server.viewerList[0]!;
    await until(() => viewer.inFlightFrames === 0 && viewer.sent + viewer.dropped === frames, 'every frame sent or dropped');
    await slow.until(() => slow.frames.length === viewer.sent, 'every frame sent to arrive');
    const got = slow.frames;
    expect(got.length).toBeLessThan(frames);
    expect(got.at(-1)!.header.dropped).toBeGreaterThan(0);
    // Every frame not received was declared, or came after the last one sent (waiting for a keyframe when the source ended).
    expect(got.at(-1)!.header.dropped + (frames - 1 - got.at(-1)!.header.seq)).toBe(frames - got.length);
    expectDropsDeclaredAtKeyframes(got);
    expect(await decodeAll(got)).toEqual(got.map((f) => f.header.seq));
    await slow.leave();
  });

  it('moves a receiver to a lower bitrate rung and back only at keyframes of the rung it goes to', async () => {
    const camera = new FakeCamera({ width: WIDTH, height: HEIGHT, fps: 30 });
    await using sender = await startSender(camera, 'h264', { bitrate: BITRATE, h264: { keyframeIntervalSeconds: 0.5 } });
    // Its acks say at first that the link carries half of what rung 0 takes, then that it is fast.
    let slowLink = true;
    const receiver = await TestReceiver.connect({
      port: sender.server.port,
      name: 'switching',
      rewriteAck: (ack) => {
        const bytesPerMs = sender.broadcast.rungBitrate(0) / 1000 / 2;
        if (!slowLink || !(bytesPerMs > 0)) return ack;
        // As if 10 kB of the frame had taken that long to arrive.
        return { ...ack, spanBytes: 10_000, spanMs: 10_000 / bytesPerMs };
      },
    });
    await receiver.until(() => receiver.stream !== undefined, 'the stream');
    void sender.pump();
    await receiver.until(() => receiver.frames.some((f) => f.rung > 0), 'a lower rung');
    slowLink = false;
    const lowered = receiver.frames.length;
    await receiver.until(() => receiver.frames.slice(lowered).some((f) => f.rung === 0), 'rung 0 again', 30_000);
    await sender.stopPump();
    const got = receiver.frames;
    for (let i = 1; i < got.length; i++) {
      if (got[i]!.rung !== got[i - 1]!.rung) expect({ seq: got[i]!.header.seq, rung: got[i]!.rung, keyframe: got[i]!.header.keyframe }).toMatchObject({ keyframe: true });
    }
    expect(receiver.end).toBeUndefined();
    expectDropsDeclaredAtKeyframes(got);
    // Every rung has the stream's size: one decoder takes the frames of all of them.
    expect(await decodeAll(got)).toEqual(got.map((f) => f.header.seq));
    await receiver.leave();
  });

  it('stops a rung\'s encoder a while after the last receiver left it', async () => {
    const camera = new FakeCamera({ width: WIDTH, height: HEIGHT, fps: 30 });
    await using sender = await startSender(camera, 'h264', { bitrate: BITRATE, h264: { lingerMs: 300 } });
    const receiver = await TestReceiver.connect({ port: sender.server.port, name: 'brief' });
    await receiver.until(() => receiver.stream !== undefined, 'the stream');
    void sender.pump();
    await receiver.until(() => receiver.frames.length >= 5, '5 frames');
    expect(sender.broadcast.h264Rungs!.runningRungs).toEqual([0]);
    await receiver.leave();
    await until(() => sender.broadcast.h264Rungs!.runningRungs.length === 0, 'the encoder to stop');
  });
});
