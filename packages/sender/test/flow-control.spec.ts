import { SenderSession } from '@camstream/protocol';
import { FakeCamera } from '@camstream/testkit';
import { startSender } from './sender-harness';
import { TestReceiver, type ReceivedFrame } from './test-receiver';

// Flow control end to end over real loopback sockets (PROTOCOL.md 4.3): the real server and pump
// on one side, receivers driven by the protocol's ReceiverSession on the other.

/** Every frame after the first: the drops its header declares are exactly the frames missing before it. */
function expectDropsDeclaredExactly(frames: readonly ReceivedFrame[]): void {
  for (let i = 1; i < frames.length; i++) {
    const prev = frames[i - 1]!.header;
    const { seq, dropped } = frames[i]!.header;
    expect({ seq, declared: dropped - prev.dropped }).toEqual({ seq, declared: seq - prev.seq - 1 });
  }
  expect(frames.every((f) => f.undeclaredGap === 0)).toBe(true);
}

describe('flow control', () => {
  it('a receiver that acknowledges promptly gets every frame of a paced 30 fps stream, none dropped', async () => {
    const frames = 60;
    const camera = new FakeCamera({ width: 320, height: 240, fps: 30, frames });
    await using sender = await startSender(camera, 'jpeg', { quality: 80 });
    const receiver = await TestReceiver.connect({ port: sender.server.port, name: 'prompt' });
    await receiver.until(() => receiver.stream !== undefined, 'the stream');
    expect(await sender.pump()).toBe('source-ended');
    await receiver.until(() => receiver.frames.length === frames, `${frames} frames`);
    expect(receiver.frames.map((f) => f.header.seq)).toEqual([...Array(frames).keys()]);
    expect(receiver.frames.every((f) => f.header.dropped === 0 && f.undeclaredGap === 0)).toBe(true);
    expect(sender.server.viewerList[0]).toMatchObject({ sent: frames, dropped: 0 });
    await receiver.leave();
  });

  it('a receiver that reads but acknowledges slowly gets fewer frames, each drop declared, and never more in flight than its window (plus one frame)', async () => {
    const frames = 60;
    const camera = new FakeCamera({ width: 320, height: 240, fps: 30, frames });
    // Every frame the sender writes: the bytes in flight after it, the window, the frame's size.
    const sends: Array<{ inFlight: number; window: number; bytes: number }> = [];
    const frameSent = SenderSession.prototype.frameSent;
    const spy = jest.spyOn(SenderSession.prototype, 'frameSent').mockImplementation(function (this: SenderSession, seq, bytes, now) {
      const dropped = frameSent.call(this, seq, bytes, now);
      sends.push({ inFlight: this.window.inFlightBytes, window: this.window.windowBytes, bytes });
      return dropped;
    });
    try {
      await using sender = await startSender(camera, 'jpeg', { quality: 80 });
      // Each ack waits 150 ms after the previous one: about 7 acks a second for 30 frames.
      const receiver = await TestReceiver.connect({ port: sender.server.port, name: 'slow acker', ackDelayMs: 150 });
      await receiver.until(() => receiver.stream !== undefined, 'the stream');
      expect(await sender.pump()).toBe('source-ended');
      // The newest frame waits for room in the window; it goes once the acks catch up.
      await receiver.until(() => receiver.frames.at(-1)?.header.seq === frames - 1, 'the last frame');
      const got = receiver.frames;
      expect(got.length).toBeLessThan(frames);
      const last = got.at(-1)!.header;
      expect(last.dropped).toBeGreaterThan(0);
      expect(last.dropped).toBe(frames - got.length);
      expectDropsDeclaredExactly(got);
      expect(sender.server.viewerList[0]).toMatchObject({ sent: got.length, dropped: last.dropped });
      expect(sends).toHaveLength(got.length);
      for (const s of sends) expect(s.inFlight).toBeLessThanOrEqual(s.window + s.bytes);
      await receiver.leave();
    } finally {
      spy.mockRestore();
    }
  });

  it('an ack for a frame never sent is refused with ERR_UNEXPECTED', async () => {
    const camera = new FakeCamera({ width: 64, height: 48, fps: 30 });
    await using sender = await startSender(camera, 'jpeg');
    const receiver = await TestReceiver.connect({ port: sender.server.port, name: 'confused' });
    await receiver.until(() => receiver.stream !== undefined, 'the stream');
    receiver.write({ type: 'ack', seq: 999, spanMs: 1, spanBytes: 100 });
    await receiver.closed;
    expect(receiver.end).toEqual({ kind: 'refused', code: 'ERR_UNEXPECTED', reason: 'ack for frame 999, which was never sent' });
    expect(sender.log).toContainEqual(expect.stringMatching(/^refused viewer #1 \(confused\): ack for frame 999, which was never sent$/));
  });

  it('a receiver that stops acknowledging is cut off with ERR_STALLED, and the others go on', async () => {
    const camera = new FakeCamera({ width: 320, height: 240, fps: 30 });
    await using sender = await startSender(camera, 'jpeg', { server: { stalledViewerTimeoutMs: 500 } });
    const silent = await TestReceiver.connect({ port: sender.server.port, name: 'silent', acks: false });
    const healthy = await TestReceiver.connect({ port: sender.server.port, name: 'healthy' });
    await healthy.until(() => sender.server.viewerList.length === 2, 'both viewers');
    void sender.pump();
    await silent.closed;
    expect(silent.end).toMatchObject({ kind: 'refused', code: 'ERR_STALLED', reason: expect.stringMatching(/^no acknowledgement for [\d.]+ (ms|s): the receiver stopped reading$/) });
    expect(sender.log).toContainEqual(expect.stringMatching(/^viewer #1 \(silent\) took no data for 0\.5 s: disconnected \(no acknowledgement for /));
    const before = healthy.frames.length;
    await healthy.until(() => healthy.frames.length >= before + 10, '10 more frames for the healthy receiver');
    expect(healthy.end).toBeUndefined();
    expectDropsDeclaredExactly(healthy.frames);
    await healthy.leave();
  });
});
