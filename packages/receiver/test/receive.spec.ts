import { H264Encoder, PreparedH264Decoder } from '@camstream/ffmpeg';
import type { FrameMeta, FrameSink, RawImage } from '@camstream/media';
import { OpenCVCodec } from '@camstream/opencv';
import type { StreamDescription } from '@camstream/protocol';
import { processExists, readFrameNumber, renderFakeFrame } from '@camstream/testkit';
import { receive, type ReceiverOptions } from '../src/receiver';
import { ReceiverStats } from '../src/stats';
import { frameBytes, rawStream, TestSender, type TestConnection } from './test-sender';

// receive(): session, pipeline and sinks together, against the protocol's SenderSession over
// real loopback sockets, with OpenCV decoding and scaling.

const codec = new OpenCVCodec();

/** A sink that records what it was shown; it may hold each image a while, checking its bytes stay put. */
class RecordingSink implements FrameSink {
  readonly shown: Array<{ seq: number; width: number; height: number; number: number | null; memory: ArrayBufferLike }> = [];
  /** Frames whose bytes changed while the sink still had them. */
  readonly overwritten: number[] = [];
  private waiters: Array<() => void> = [];

  constructor(private readonly holdMs = 0) {}

  async write(image: RawImage, meta?: FrameMeta): Promise<void> {
    const before = Buffer.from(image.data);
    this.shown.push({ seq: meta!.seq, width: image.width, height: image.height, number: readFrameNumber(image), memory: image.data.buffer });
    for (const wake of this.waiters.splice(0)) wake();
    // A slow display: the image must stay as it was until the write settles.
    if (this.holdMs > 0) await new Promise((resolve) => setTimeout(resolve, this.holdMs));
    if (!before.equals(image.data)) this.overwritten.push(meta!.seq);
  }

  async until(count: number): Promise<void> {
    while (this.shown.length < count) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  async close(): Promise<void> {}
}

function startReceiving(port: number, sink: FrameSink, extra: Partial<ReceiverOptions> = {}) {
  const stats = new ReceiverStats();
  const log: string[] = [];
  const abort = new AbortController();
  const result = receive({
    host: '127.0.0.1',
    port,
    name: 'receive test',
    codec,
    openSinks: async () => [sink],
    reconnect: false,
    backoffMs: { min: 20, max: 100 },
    stats,
    log: (line) => log.push(line),
    signal: abort.signal,
    ...extra,
  });
  return { stats, log, result, stop: () => abort.abort() };
}

async function sendPicture(connection: TestConnection, seq: number, encoding: 'jpeg' | 'raw-bgr', width: number, height: number, rung = 0): Promise<void> {
  const payload = await codec.encode(renderFakeFrame(seq, width, height), encoding, { quality: 80 });
  await connection.sendFrame(payload, { seq, captureTime: Date.now(), width, height, channels: 3, encoding, ...(rung ? { rung } : {}) });
}

describe('receive()', () => {
  it('shows frames of lower rungs at the stream size, and its figures name the rung', async () => {
    const stream: StreamDescription = {
      width: 128,
      height: 96,
      fps: 30,
      pixelFormat: 'bgr24',
      encoding: 'jpeg',
      quality: 80,
      rungs: [
        { width: 128, height: 96, quality: 50 },
        { width: 64, height: 48, quality: 50 },
      ],
    };
    await using sender = await TestSender.start({ stream });
    const sink = new RecordingSink();
    const { stats, result } = startReceiving(sender.port, sink, { maxFrames: 3 });
    const connection = await sender.connection(1);
    await connection.joined;
    await sendPicture(connection, 0, 'jpeg', 128, 96);
    await sink.until(1);
    await sendPicture(connection, 1, 'jpeg', 64, 48, 2);
    await sink.until(2);
    await sendPicture(connection, 2, 'jpeg', 64, 48, 2);
    expect(await result).toEqual({ outcome: 'frames-reached' });
    expect(sink.shown.map(({ seq, width, height, number }) => ({ seq, width, height, number }))).toEqual([
      { seq: 0, width: 128, height: 96, number: 0 },
      { seq: 1, width: 128, height: 96, number: 1 },
      { seq: 2, width: 128, height: 96, number: 2 },
    ]);
    expect(stats.summary()).toMatchObject({ frames: 3, shown: 3, lowerRungFrames: 2, rung: { index: 2, lowest: 2, width: 64, height: 48, quality: 50 } });
    // Every frame was acknowledged, in order; then the receiver left with a bye.
    await connection.until(() => connection.end !== undefined, 'the bye');
    expect(connection.acks.map((a) => a.seq)).toEqual([0, 1, 2]);
    expect(connection.end).toEqual({ kind: 'bye', reason: 'receiver stopping' });
  });

  it('raw frames land in reused buffers, and none is written while a sink still has it', async () => {
    await using sender = await TestSender.start({ stream: rawStream(320, 240) });
    const sink = new RecordingSink(3);
    const frames = 40;
    const { stats, result } = startReceiving(sender.port, sink, { maxFrames: frames });
    const connection = await sender.connection(1);
    await connection.joined;
    const pictures = [0, 1, 2, 3].map((n) => renderFakeFrame(n, 320, 240).data);
    for (let seq = 0; seq < frames; seq++) {
      await connection.sendFrame(pictures[seq % 4]!, { seq, captureTime: Date.now(), width: 320, height: 240, channels: 3, encoding: 'raw-bgr' });
      // No more than two frames ahead of the acks: some arrive while the sink holds the one before.
      await connection.until(() => connection.acks.length >= seq - 1, 'the acks to catch up');
    }
    expect(await result).toEqual({ outcome: 'frames-reached' });
    expect(sink.overwritten).toEqual([]);
    expect(sink.shown.every(({ seq, number }) => number === seq % 4)).toBe(true);
    const shown = stats.summary().shown;
    expect(shown).toBeGreaterThanOrEqual(frames / 4);
    // A handful of buffers served every frame shown (a fresh Buffer per frame would be one each).
    expect(new Set(sink.shown.map((s) => s.memory)).size).toBeLessThan(shown / 2);
  });

  it('an onFrame hook keeps its payloads untouched, unless it says it keeps none', async () => {
    const run = async (keeps: ReceiverOptions['onFrameKeepsPayload']) => {
      await using sender = await TestSender.start({ stream: rawStream(320, 240) });
      const kept: Array<{ payload: Buffer; copy: Buffer }> = [];
      const { result } = startReceiving(sender.port, new RecordingSink(), {
        maxFrames: 12,
        onFrame: (_header, payload) => void kept.push({ payload, copy: Buffer.from(payload) }),
        ...(keeps === undefined ? {} : { onFrameKeepsPayload: keeps }),
      });
      const connection = await sender.connection(1);
      await connection.joined;
      for (let seq = 0; seq < 12; seq++) {
        await connection.sendFrame(renderFakeFrame(seq, 320, 240).data, { seq, captureTime: Date.now(), width: 320, height: 240, channels: 3, encoding: 'raw-bgr' });
        await connection.until(() => connection.acks.length > seq, 'the ack');
      }
      expect(await result).toEqual({ outcome: 'frames-reached' });
      return { intact: kept.filter((k) => k.payload.equals(k.copy)).length, buffers: new Set(kept.map((k) => k.payload.buffer)).size };
    };
    expect(await run(undefined)).toEqual({ intact: 12, buffers: 12 });
    const reused = await run((header) => header.encoding === 'jpeg'); // keeps JPEG payloads only
    expect(reused.buffers).toBeLessThan(6);
  });

  it('does not retry a refusal that cannot succeed: a wrong secret, a stream over --max-size', async () => {
    await using guarded = await TestSender.start({ stream: rawStream(8, 4), secret: 'the right secret' });
    const wrong = startReceiving(guarded.port, new RecordingSink(), { reconnect: true, security: { secret: 'a wrong secret' } });
    expect(await wrong.result).toEqual({ outcome: 'failed', error: expect.objectContaining({ message: 'the sender refused the connection: authentication failed: wrong shared secret (ERR_AUTH)' }) });
    expect(guarded.connections).toHaveLength(1);

    await using large = await TestSender.start({ stream: rawStream(1920, 1080) });
    const small = startReceiving(large.port, new RecordingSink(), { reconnect: true, maxStreamSize: { width: 1280, height: 720 } });
    expect(await small.result).toEqual({ outcome: 'failed', error: expect.objectContaining({ code: 'ERR_STREAM_TOO_LARGE' }) });
    expect(large.connections).toHaveLength(1);
    expect(small.stats.corrupt).toBe(0);
  });

  it('comes back after the sender says bye, and counts a stream that breaks the rules as corrupt', async () => {
    await using sender = await TestSender.start({ stream: rawStream(8, 4) });
    const { stats, log, result, stop } = startReceiving(sender.port, new RecordingSink(), { reconnect: true });
    try {
      const first = await sender.connection(1);
      await first.joined;
      first.leave('restarting');
      const second = await sender.connection(2);
      await second.joined;
      const fields = { seq: 5, captureTime: Date.now(), width: 8, height: 4, channels: 3, encoding: 'raw-bgr', dropped: 0 } as const;
      await second.sendFrame(Buffer.alloc(96), fields);
      await second.write(frameBytes(Buffer.alloc(96), fields)); // frame 5 again
      const third = await sender.connection(3);
      await third.joined;
    } finally {
      stop();
    }
    expect(await result).toEqual({ outcome: 'stopped' });
    expect(log).toEqual(
      expect.arrayContaining(['the sender said bye: restarting', 'frame 5 arrived after frame 5: sequence numbers must increase', expect.stringMatching(/^reconnecting in \d\.\d s$/)]),
    );
    expect(stats.corrupt).toBe(1);
    expect(stats.summary().frames).toBe(1);
  });

  it('logs, once per connection, how long after connecting its first picture was decoded', async () => {
    await using sender = await TestSender.start({ stream: { width: 64, height: 48, fps: 30, pixelFormat: 'bgr24', encoding: 'jpeg', quality: 80 } });
    const sink = new RecordingSink();
    const { log, result } = startReceiving(sender.port, sink, { maxFrames: 2 });
    const connection = await sender.connection(1);
    await connection.joined;
    expect(log.filter((line) => line.startsWith('first picture'))).toEqual([]);
    await sendPicture(connection, 0, 'jpeg', 64, 48);
    await sink.until(1);
    await sendPicture(connection, 1, 'jpeg', 64, 48);
    expect(await result).toEqual({ outcome: 'frames-reached' });
    expect(log.filter((line) => line.startsWith('first picture'))).toEqual([expect.stringMatching(/^first picture \d+ ms after connecting$/)]);
  });

  describe('an H.264 decoder process started ahead', () => {
    it('decodes the first H.264 stream: its first picture does not wait for ffmpeg to start', async () => {
      const encoder = new H264Encoder({ width: 64, height: 48, fps: 30, keyframeInterval: 30, keepSpareProcess: false });
      const units = [await encoder.encode(renderFakeFrame(0, 64, 48)), await encoder.encode(renderFakeFrame(1, 64, 48))];
      await encoder.close();
      await using sender = await TestSender.start({ stream: { width: 64, height: 48, fps: 30, pixelFormat: 'bgr24', encoding: 'h264', bitrate: 200_000 } });
      const prepared = new PreparedH264Decoder();
      const pid = prepared.pid!;
      const sink = new RecordingSink();
      const { result } = startReceiving(sender.port, sink, { maxFrames: 2, preparedH264Decoder: prepared });
      const connection = await sender.connection(1);
      await connection.joined;
      for (const [seq, unit] of units.entries()) {
        await connection.sendFrame(unit.data, { seq, captureTime: Date.now(), width: 64, height: 48, channels: 3, encoding: 'h264', keyframe: unit.keyframe });
      }
      await sink.until(2);
      // The pictures came out of the process started ahead: taken, and still running until the end.
      expect(prepared.ready).toBe(false);
      expect(processExists(pid)).toBe(true);
      expect(sink.shown.map(({ number }) => number)).toEqual([0, 1]);
      expect(await result).toEqual({ outcome: 'frames-reached' });
      expect(processExists(pid)).toBe(false);
    });

    it('ends at the hello of a stream in another encoding', async () => {
      await using sender = await TestSender.start({ stream: { width: 64, height: 48, fps: 30, pixelFormat: 'bgr24', encoding: 'jpeg', quality: 80 } });
      const prepared = new PreparedH264Decoder();
      const pid = prepared.pid!;
      const closing = jest.spyOn(prepared, 'close');
      const sink = new RecordingSink();
      const { result } = startReceiving(sender.port, sink, { maxFrames: 1, preparedH264Decoder: prepared });
      const connection = await sender.connection(1);
      await connection.joined;
      await sendPicture(connection, 0, 'jpeg', 64, 48);
      await sink.until(1);
      expect(closing).toHaveBeenCalled();
      await closing.mock.results[0]!.value;
      expect(processExists(pid)).toBe(false);
      expect(await result).toEqual({ outcome: 'frames-reached' });
    });
  });

  it('fails the run when a sink cannot be opened', async () => {
    await using sender = await TestSender.start({ stream: rawStream(8, 4) });
    const broken = new Error('cannot open out.avi');
    const { result } = startReceiving(sender.port, new RecordingSink(), {
      reconnect: true,
      openSinks: async () => {
        throw broken;
      },
    });
    expect(await result).toEqual({ outcome: 'failed', error: broken });
  });
});
