import net from 'node:net';
import type { FrameSink, RawImage } from '@camstream/media';
import { OpenCVCodec } from '@camstream/opencv';
import { ReceiverStats } from '@camstream/receiver';
import { FakeCamera, freePort, imageDifference, listenOnFreePort, readFrameNumber, renderFakeFrame } from '@camstream/testkit';
import { Call, type CallOptions } from '../src/call';

// Two calls in one process over real loopback sockets, each with a fake camera whose frames carry
// their number: each side checks by content that what it shows is the other side's camera.

const codec = new OpenCVCodec();
/** Side B's camera numbers its frames from here: A's frames are below, B's above. */
const B_FIRST_FRAME = 1_000_000;

/** Records the partner's frames: their numbers, and how far each is from the frame with that number. */
class PartnerSink implements FrameSink {
  readonly numbers: number[] = [];
  worstDifference = 0;
  write(image: RawImage): void {
    const n = readFrameNumber(image);
    if (n === null) throw new Error('a frame from the partner carries no frame number');
    this.numbers.push(n);
    this.worstDifference = Math.max(this.worstDifference, imageDifference(image, renderFakeFrame(n, image.width, image.height)));
  }
  async close(): Promise<void> {}
}

interface Side {
  call: Call;
  sink: PartnerSink;
  stats: ReceiverStats;
  log: string[];
}

async function startSide(port: number, partnerPort: number, startAt: number, extra: Partial<CallOptions> = {}): Promise<Side> {
  const sink = new PartnerSink();
  const stats = new ReceiverStats();
  const log: string[] = [];
  const call = await Call.start({
    host: '127.0.0.1',
    port,
    partner: { host: '127.0.0.1', port: partnerPort },
    source: new FakeCamera({ width: 320, height: 240, fps: 30, startAt }),
    codec,
    encoding: 'jpeg',
    quality: 90,
    name: `side from ${startAt}`,
    openPartnerSinks: async () => [sink],
    receiverStats: stats,
    backoffMs: { min: 20, max: 200 },
    log: (direction, line) => log.push(`${direction}: ${line}`),
    ...extra,
  });
  return { call, sink, stats, log };
}

async function until(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('camstream-call', () => {
  it('two calls on loopback: either may start first, each sees the other by content, and hanging up ends both directions of one side', async () => {
    // Something at B's port that hangs up on every connection, counting them, until B starts.
    let attempts = 0;
    const notYetB = net.createServer((socket) => {
      attempts++;
      socket.destroy();
    });
    const portB = await listenOnFreePort(notYetB);
    const portA = await freePort();
    const a = await startSide(portA, portB, 0);
    let b: Side | undefined;
    try {
      // A starts alone: it retries, saying why once, however often it fails the same way.
      await until(() => attempts >= 3, "A's third attempt");
      expect(a.log.filter((line) => /^in: the sender closed the connection before its hello/.test(line))).toHaveLength(1);
      expect(a.log.filter((line) => /^in: reconnecting in /.test(line))).toHaveLength(1);
      await new Promise<void>((resolve) => notYetB.close(() => resolve()));
      b = await startSide(portB, portA, B_FIRST_FRAME);
      const sideB = b;
      await until(() => a.sink.numbers.length >= 15 && sideB.sink.numbers.length >= 15, '15 frames each way');

      // Each shows the other's camera, never its own.
      expect(Math.min(...a.sink.numbers)).toBeGreaterThanOrEqual(B_FIRST_FRAME);
      expect(Math.max(...b.sink.numbers)).toBeLessThan(B_FIRST_FRAME);
      expect(a.sink.worstDifference).toBeLessThan(8);
      expect(b.sink.worstDifference).toBeLessThan(8);
      for (const side of [a, b]) expect(side.stats.summary()).toMatchObject({ gaps: 0, corrupt: 0 });

      // A hangs up: its receiver leaves B's sender, its sender says bye to B's receiver.
      expect(await a.call.hangUp()).toEqual({ outcome: 'stopped' });
      await until(() => sideB.log.some((line) => /^in: the sender said bye: the call ended$/.test(line)), "B's receiver to hear A's bye");
      await until(() => sideB.log.some((line) => /^out: viewer #\d+ \(side from 0\) left/.test(line)), "A's receiver to leave B's sender");
      // B goes on waiting for A to come back.
      await until(() => sideB.log.some((line) => /^in: no sender at/.test(line)), 'B to wait for A again');
    } finally {
      notYetB.close();
      await a.call.hangUp();
      await b?.call.hangUp();
    }
  });

  it('needs the same secret on both sides: a wrong one ends the call of the side that learns it, as retrying cannot fix it', async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    const a = await startSide(portA, portB, 0, { secret: 'the right secret' });
    const b = await startSide(portB, portA, B_FIRST_FRAME, { secret: 'a wrong secret!' });
    const ended = (side: Side) => {
      let end: Awaited<Side['call']['finished']> | undefined;
      void side.call.finished.then((e) => (end = e));
      return () => end;
    };
    const [endOfA, endOfB] = [ended(a), ended(b)];
    try {
      // A side whose receiver is refused by the other's sender ends. The other side may never
      // hear it (its partner has gone by then): its sender says it refused the partner, and it
      // waits for the partner to come back, as after a hang-up; nobody else can end its call.
      const refusedPartner = (side: Side) => side.log.some((line) => /^out: refused .*wrong shared secret/.test(line));
      const over = (side: Side, end: () => unknown) => end() !== undefined || refusedPartner(side);
      await until(() => (endOfA() ?? endOfB()) !== undefined && over(a, endOfA) && over(b, endOfB), 'a side to end, and the other to end or refuse its partner');
      const ends = [endOfA(), endOfB()].filter((end) => end !== undefined);
      expect(ends.length).toBeGreaterThan(0);
      for (const end of ends) {
        expect(end.outcome).toBe('failed');
        expect((end as { error: Error }).error.message).toMatch(/ERR_AUTH|secret/);
      }
      expect(a.sink.numbers).toEqual([]);
      expect(b.sink.numbers).toEqual([]);
    } finally {
      await a.call.hangUp();
      await b.call.hangUp();
    }
  });
});
