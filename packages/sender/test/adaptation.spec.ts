import type { AckHeader } from '@camstream/protocol';
import { FakeCamera } from '@camstream/testkit';
import { codec, startSender, until } from './sender-harness';
import { TestReceiver, type ReceivedFrame } from './test-receiver';

// Quality rungs per viewer (PROTOCOL.md 4.4) over real loopback sockets, with the real OpenCV
// codec. A receiver tells the sender how fast its link is through the spans in its acks; here
// the test receivers rewrite those spans to report a slow or a fast link.

/** Reports a link of `bytesPerMs` in every ack: capacity = spanBytes / spanMs (spanMs >= 2). */
const reportLink = (bytesPerMs: number) => (ack: AckHeader): AckHeader => ({ ...ack, spanMs: 200, spanBytes: 200 * bytesPerMs });
/** 20 bytes/ms: 0.16 Mbit/s, far below a 320x240 JPEG stream at 30 fps. */
const SLOW = 20;
/** 10,000 bytes/ms: 80 Mbit/s. */
const FAST = 10_000;

/** Every frame has exactly the size its rung announced. */
function expectSizesOfTheirRungs(receiver: TestReceiver, frames: readonly ReceivedFrame[]): void {
  for (const f of frames) {
    const rung = receiver.rungs[f.rung]!;
    expect({ rung: f.rung, width: f.header.width, height: f.header.height }).toEqual({ rung: f.rung, width: rung.width, height: rung.height });
  }
}

describe('quality rungs', () => {
  it('a JPEG stream announces its rungs: the same size at lower quality, then smaller sizes', async () => {
    await using sender = await startSender(new FakeCamera({ width: 320, height: 240, fps: 30 }), 'jpeg', { quality: 80 });
    const receiver = await TestReceiver.connect({ port: sender.server.port });
    await receiver.until(() => receiver.stream !== undefined, 'the stream');
    expect(receiver.stream!.rungs).toEqual([
      { width: 320, height: 240, quality: 60 },
      { width: 320, height: 240, quality: 40 },
      { width: 240, height: 180, quality: 60 },
      { width: 240, height: 180, quality: 40 },
      { width: 160, height: 120, quality: 60 },
      { width: 160, height: 120, quality: 40 },
      { width: 80, height: 60, quality: 60 },
    ]);
    await receiver.leave();
  });

  it('a receiver whose acks report a slow link is moved down the ladder, and back up when they report a fast one', async () => {
    await using sender = await startSender(new FakeCamera({ width: 320, height: 240, fps: 30 }), 'jpeg', { quality: 80 });
    let link = SLOW;
    const receiver = await TestReceiver.connect({ port: sender.server.port, name: 'adaptive', rewriteAck: (ack) => reportLink(link)(ack) });
    await receiver.until(() => receiver.stream !== undefined, 'the stream');
    void sender.pump();
    await receiver.until(() => receiver.frames.some((f) => f.rung > 0), 'a frame on a lower rung');
    const down = receiver.frames.findIndex((f) => f.rung > 0);
    await receiver.until(() => receiver.frames.length >= down + 10, '10 frames on lower rungs');
    const low = receiver.frames.slice(down);
    expect(low.every((f) => f.rung > 0 && f.header.rung === f.rung)).toBe(true);
    expect(sender.log).toContainEqual(expect.stringMatching(/^viewer #1 \(adaptive\) now on rung [1-7] \(\d+x\d+ q\d+\): link 0\.2 Mbit\/s, \d+ frames dropped so far$/));

    link = FAST;
    const fastFrom = receiver.frames.length;
    await receiver.until(() => receiver.frames.slice(fastFrom).some((f) => f.rung === 0), 'a frame on rung 0 again');
    const up = receiver.frames.slice(fastFrom).find((f) => f.rung === 0)!;
    expect(up.header.rung).toBeUndefined(); // rung 0 is written as no rung at all
    // Rung changes are logged at most every 2 s per viewer: this one may come a little later.
    const upLine = /^viewer #1 \(adaptive\) now on rung 0 \(320x240 q80\): link 80\.0 Mbit\/s, \d+ frames dropped so far$/;
    await until(() => sender.log.some((line) => upLine.test(line)), 'the log line about rung 0');
    expectSizesOfTheirRungs(receiver, receiver.frames);
    // Switching rungs is not a drop: the sequence goes on, every drop declared.
    expect(receiver.frames.every((f) => f.undeclaredGap === 0)).toBe(true);
    await receiver.leave();
  });

  it('with --adapt off, a receiver on a slow link stays on rung 0', async () => {
    await using sender = await startSender(new FakeCamera({ width: 320, height: 240, fps: 30 }), 'jpeg', { quality: 80, server: { adapt: false } });
    const receiver = await TestReceiver.connect({ port: sender.server.port, name: 'stuck on top', rewriteAck: reportLink(SLOW) });
    await receiver.until(() => receiver.stream !== undefined, 'the stream');
    void sender.pump();
    // 1.5 s of frames: the adaptive receiver above is moved down after its first ack.
    await receiver.until(() => receiver.frames.length >= 45, '45 frames');
    expect(receiver.frames.every((f) => f.rung === 0 && f.header.width === 320)).toBe(true);
    expect(sender.log.filter((line) => / now on rung /.test(line))).toEqual([]);
    await receiver.leave();
  });

  it('viewers on two rungs cost one encode per rung per frame, however many viewers are on each', async () => {
    const encode = jest.spyOn(codec, 'encode');
    try {
      // For each published frame: the rungs encoded and the codec calls made for it.
      const perFrame: Array<{ rungs: number[]; calls: Array<{ width: number; quality: number | undefined }> }> = [];
      let counted = 0;
      await using sender = await startSender(new FakeCamera({ width: 320, height: 240, fps: 30 }), 'jpeg', {
        quality: 80,
        onPublished: (result) => {
          const calls = encode.mock.calls.slice(counted).map(([image, , options]) => ({ width: image.width, quality: options?.quality }));
          counted = encode.mock.calls.length;
          perFrame.push({ rungs: [...result.frames.keys()].sort(), calls });
        },
      });
      const slow = await TestReceiver.connect({ port: sender.server.port, name: 'slow', rewriteAck: reportLink(SLOW) });
      const fast = [await TestReceiver.connect({ port: sender.server.port, name: 'fast 1' }), await TestReceiver.connect({ port: sender.server.port, name: 'fast 2' })];
      await slow.until(() => sender.server.viewerList.length === 3, 'three viewers');
      void sender.pump();
      await slow.until(() => slow.frames.some((f) => f.rung > 0), 'the slow viewer on a lower rung');
      const from = perFrame.length;
      await slow.until(() => perFrame.length >= from + 20, '20 more frames');
      const lowRung = slow.frames.at(-1)!.rung;
      const spec = slow.rungs[lowRung]!;
      for (const frame of perFrame.slice(from, from + 20)) {
        expect(frame.rungs).toEqual([0, lowRung]);
        expect(frame.calls).toEqual([{ width: 320, quality: 80 }, { width: spec.width, quality: spec.quality }]);
      }
      // The two fast viewers shared the rung-0 frames.
      for (const r of fast) expect(r.frames.every((f) => f.rung === 0)).toBe(true);
      await Promise.all([slow, ...fast].map((r) => r.leave()));
    } finally {
      encode.mockRestore();
    }
  });
});
