import net from 'node:net';
import { MessageDecoder, type Encoding } from '@camstream/protocol';
import type { FrameSink, RawImage } from '@camstream/media';
import { FakeCamera, readFrameNumber, stallingClient } from '@camstream/testkit';
import { receive, ReceiverStats } from '@camstream/receiver';
import { CheckingSink, codec, receiverHello, pump, startReceiver, startServer, until } from './harness';

// Through real loopback TCP, in one process: the sender's server and pump, the receiver's
// session/reconnect logic and the real OpenCV codec; only the camera is fake.

describe.each<[Encoding, number]>([
  ['raw-bgr', 0],
  ['jpeg', 6],
])('a %s stream', (encoding, tolerance) => {
  it.each([1, 4])('reaches %i receiver(s) with every frame, in order, with the right content', async (count) => {
    const frames = 40;
    const camera = new FakeCamera({ width: 320, height: 240, fps: 60, frames });
    const server = await startServer(camera, encoding);
    try {
      const receivers = Array.from({ length: count }, (_, i) => startReceiver(server.port, { maxFrames: frames, name: `r${i}` }));
      await until(() => server.viewerList.length === count, `${count} viewers`);
      expect(await pump(server, camera)).toBe('source-ended');

      for (const r of receivers) {
        expect(await r.result).toEqual({ outcome: 'frames-reached' });
        const s = r.stats.summary();
        expect(s).toMatchObject({ frames, gaps: 0, senderDropped: 0, corrupt: 0 });
        // Every frame was checked; those not shown were skipped by the latest-wins decoder.
        expect(r.sink.numbers.length + s.skipped).toBe(frames);
        expect(r.sink.numbers).toEqual([...r.sink.numbers].sort((a, b) => a - b));
        expect(new Set(r.sink.numbers).size).toBe(r.sink.numbers.length);
        expect(r.sink.numbers.at(-1)).toBe(frames - 1);
        expect(r.sink.worstDifference).toBeLessThanOrEqual(tolerance);
        expect(r.sink.closed).toBe(true);
      }
    } finally {
      await server.close('test over');
    }
  });
});

it('a stalled receiver neither slows the others nor grows the sender’s buffers', async () => {
  const frames = 150;
  const camera = new FakeCamera({ width: 640, height: 480, fps: 100, frames });
  const frameBytes = 640 * 480 * 3;
  const server = await startServer(camera, 'raw-bgr');
  await using stalled = await stallingClient(server.port, '127.0.0.1', receiverHello('stalled'));
  try {
    const healthy = startReceiver(server.port, { maxFrames: frames, name: 'healthy' });
    await until(() => server.viewerList.length === 2, 'both viewers');
    const stalledViewer = server.viewerList.find((v) => v.name === 'stalled')!;
    // It never acknowledges, so its window stays where it starts (PROTOCOL.md 4.3).
    const window = stalledViewer.windowBytes;
    await pump(server, camera);

    expect(await healthy.result).toEqual({ outcome: 'frames-reached' });
    expect(healthy.stats.summary()).toMatchObject({ frames, gaps: 0, senderDropped: 0 });
    // Nothing written to the stalled viewer was ever acknowledged: all of it is still in flight,
    // at most one frame (or what fits in its window); everything else was dropped for it.
    expect(stalledViewer.bytesSent).toBeGreaterThan(0);
    expect(stalledViewer.bytesSent).toBeLessThanOrEqual(Math.max(window, frameBytes + 1024));
    expect(stalledViewer.dropped).toBeGreaterThan(frames / 2);
    expect(stalledViewer.sent + stalledViewer.dropped).toBeLessThanOrEqual(frames);
  } finally {
    await stalled.close();
    await server.close('test over');
  }
});

it('the receiver reconnects when the sender restarts, and checks sequence numbers per connection', async () => {
  const first = new FakeCamera({ width: 160, height: 120, fps: 50 });
  const server1 = await startServer(first, 'jpeg');
  const port = server1.port;
  const receiver = startReceiver(port, { maxFrames: 60, reconnect: true });
  const stop1 = new AbortController();
  const pumping1 = pump(server1, first, stop1.signal);
  await until(() => receiver.stats.summary().frames >= 20, '20 frames from the first sender');
  stop1.abort();
  await pumping1;
  await server1.close('sender shutting down');
  await first.close();

  const second = new FakeCamera({ width: 160, height: 120, fps: 50, startAt: 1000 });
  const server2 = await startServer(second, 'jpeg', { port });
  const stop2 = new AbortController();
  const pumping2 = pump(server2, second, stop2.signal);
  try {
    expect(await receiver.result).toEqual({ outcome: 'frames-reached' });
    expect(receiver.stats.summary()).toMatchObject({ frames: 60, gaps: 0, corrupt: 0 });
    expect(receiver.log.join('\n')).toMatch(/the sender said bye: sender shutting down[\s\S]*reconnecting/);
    expect(receiver.sink.numbers.some((n) => n >= 1000)).toBe(true);
  } finally {
    stop2.abort();
    await pumping2;
    await server2.close('test over');
  }
});

it('the sender survives a receiver that dies in the middle of a frame', async () => {
  const camera = new FakeCamera({ width: 640, height: 480, fps: 60 });
  const server = await startServer(camera, 'raw-bgr');
  const stop = new AbortController();
  const pumping = pump(server, camera, stop.signal);
  try {
    const healthy = startReceiver(server.port, { maxFrames: 60, name: 'healthy' });
    // A raw client that says hello, reads into the first frame's payload, then vanishes.
    const died = await new Promise<number>((resolve, reject) => {
      const socket = net.connect(server.port, '127.0.0.1', () => socket.write(receiverHello('doomed')));
      const decoder = new MessageDecoder();
      let seen = 0;
      socket.on('error', reject);
      socket.on('data', (chunk: Buffer) => {
        seen += chunk.length;
        decoder.push(chunk);
        if (seen > 100_000 && decoder.midMessage) {
          socket.resetAndDestroy();
          resolve(seen);
        }
      });
    });
    expect(died).toBeGreaterThan(100_000);
    await until(() => server.viewerList.every((v) => v.name !== 'doomed'), 'the dead viewer to be gone');
    expect(await healthy.result).toEqual({ outcome: 'frames-reached' });
    expect(healthy.stats.summary()).toMatchObject({ frames: 60, gaps: 0, corrupt: 0 });
  } finally {
    stop.abort();
    await pumping;
    await server.close('test over');
  }
});

it('refuses receivers beyond the viewer limit with a reason, and keeps serving the others', async () => {
  const camera = new FakeCamera({ width: 160, height: 120, fps: 50 });
  const server = await startServer(camera, 'jpeg', { maxViewers: 1 });
  const stop = new AbortController();
  const pumping = pump(server, camera, stop.signal);
  try {
    const first = startReceiver(server.port, { maxFrames: 30, name: 'first' });
    await until(() => server.viewerList.length === 1, 'the first viewer');
    const second = startReceiver(server.port, { name: 'second' });
    const refused = await second.result;
    expect(refused).toMatchObject({ outcome: 'failed', error: expect.objectContaining({ message: expect.stringMatching(/limit of 1 viewers/) }) });
    expect(await first.result).toEqual({ outcome: 'frames-reached' });
  } finally {
    stop.abort();
    await pumping;
    await server.close('test over');
  }
});

it('a sink that opens slowly (a recorder) gets every frame that was decoded, none into the void', async () => {
  const frames = 30;
  const camera = new FakeCamera({ width: 160, height: 120, fps: 100, frames });
  const server = await startServer(camera, 'raw-bgr');
  const sink = new CheckingSink();
  const stats = new ReceiverStats();
  try {
    const result = receive({
      host: '127.0.0.1',
      port: server.port,
      name: 'slow sink',
      codec,
      openSinks: () => new Promise((resolve) => setTimeout(() => resolve([sink]), 300)),
      maxFrames: frames,
      reconnect: false,
      stats,
      log: () => undefined,
      signal: new AbortController().signal,
    });
    await until(() => server.viewerList.length === 1, 'the receiver');
    await pump(server, camera);
    expect(await result).toEqual({ outcome: 'frames-reached' });
    const summary = stats.summary();
    expect(sink.numbers.length).toBeGreaterThan(0);
    // Decoded frames all reached the sink; the rest were skipped while it opened, and counted.
    expect(sink.numbers.length + summary.skipped).toBe(frames);
  } finally {
    await server.close('test over');
  }
});

describe('decoded pixels are reused only when every sink is done with them', () => {
  /** Distinct pieces of memory (ArrayBuffer and offset) that Buffers view, whatever the Buffer objects. */
  class MemoryRegions {
    private readonly offsets = new Map<ArrayBufferLike, Set<number>>();
    add(buffer: Buffer): void {
      const offsets = this.offsets.get(buffer.buffer) ?? new Set<number>();
      offsets.add(buffer.byteOffset);
      this.offsets.set(buffer.buffer, offsets);
    }
    get size(): number {
      return [...this.offsets.values()].reduce((sum, offsets) => sum + offsets.size, 0);
    }
  }

  /** Reads the frame number when write() starts and again after a while: the pixels must not change meanwhile. */
  class SlowSink implements FrameSink {
    readonly numbers: number[] = [];
    /** The memory each image lay in: the pool hands out a new Buffer view of the same memory each time. */
    readonly memory = new MemoryRegions();
    changedUnderfoot = 0;
    async write(image: RawImage): Promise<void> {
      const before = readFrameNumber(image);
      this.memory.add(image.data);
      await new Promise((resolve) => setTimeout(resolve, 15));
      if (readFrameNumber(image) !== before) this.changedUnderfoot++;
      if (before !== null) this.numbers.push(before);
    }
    async close(): Promise<void> {}
  }

  /** Keeps every image to look at later, and says so. */
  class KeepingSink implements FrameSink {
    readonly keepsImages = true;
    readonly kept: Array<{ image: RawImage; number: number | null }> = [];
    write(image: RawImage): void {
      this.kept.push({ image, number: readFrameNumber(image) });
    }
    async close(): Promise<void> {}
  }

  async function receiveJpeg(sinks: FrameSink[]): Promise<ReceiverStats> {
    const frames = 40;
    const camera = new FakeCamera({ width: 320, height: 240, fps: 100, frames });
    const server = await startServer(camera, 'jpeg');
    const stats = new ReceiverStats();
    try {
      const result = receive({
        host: '127.0.0.1', port: server.port, name: 'pooling', codec, openSinks: async () => sinks,
        maxFrames: frames, reconnect: false, stats, log: () => undefined, signal: new AbortController().signal,
      });
      await until(() => server.viewerList.length === 1, 'the receiver');
      await pump(server, camera);
      expect(await result).toEqual({ outcome: 'frames-reached' });
      return stats;
    } finally {
      await server.close('test over');
    }
  }

  it('a slow sink sees its image unchanged until its write settles, and buffers are reused', async () => {
    const slow = new SlowSink();
    await receiveJpeg([slow]);
    expect(slow.numbers.length).toBeGreaterThan(3);
    expect(slow.changedUnderfoot).toBe(0);
    expect(slow.memory.size).toBeLessThan(slow.numbers.length);
  });

  it('a sink that keeps images gets buffers nobody reuses', async () => {
    const slow = new SlowSink();
    const keeping = new KeepingSink();
    await receiveJpeg([slow, keeping]);
    expect(keeping.kept.length).toBeGreaterThan(3);
    for (const { image, number } of keeping.kept) expect(readFrameNumber(image)).toBe(number);
    const memory = new MemoryRegions();
    for (const { image } of keeping.kept) memory.add(image.data);
    expect(memory.size).toBe(keeping.kept.length);
  });
});
