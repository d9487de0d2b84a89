import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { FrameMeta, FrameSink, RawImage } from '@camstream/media';
import { OpenCVCodec } from '@camstream/opencv';
import { encodeMessage } from '@camstream/protocol';
import { imageDifference, listenOnFreePort, readFrameNumber, renderFakeFrame, startProcess } from '@camstream/testkit';
import { encodeTutorialFrame } from '@camstream/tutorial-wire';
import { receive, type ReceiverOptions } from '../src/receiver';
import { ReceiverStats, TUTORIAL_WIRE_NOT_KNOWN } from '../src/stats';

// receive() on the tutorial's wire: real pickles from Python's pickle and numpy (a small streamer
// in fixtures/), and frames framed by camstream's own encoder, over real loopback sockets.

const codec = new OpenCVCodec();
const PYTHON = process.env['CAMSTREAM_PYTHON'] ?? '/usr/bin/python3';
const STREAMER = path.join(__dirname, 'fixtures', 'pickle_streamer.py');

class CollectingSink implements FrameSink {
  readonly images: Array<{ image: RawImage; meta: FrameMeta | undefined }> = [];
  write(image: RawImage, meta?: FrameMeta): void {
    this.images.push({ image: { ...image, data: Buffer.from(image.data) }, meta });
  }
  async close(): Promise<void> {}
}

function startReceiving(port: number, sink: FrameSink, extra: Partial<ReceiverOptions> = {}) {
  const stats = new ReceiverStats({ notKnown: TUTORIAL_WIRE_NOT_KNOWN });
  const log: string[] = [];
  const abort = new AbortController();
  const result = receive({
    wire: 'tutorial',
    host: '127.0.0.1',
    port,
    name: 'unused on this wire',
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

/** Runs fixtures/pickle_streamer.py and returns the port it listens on. */
async function pythonStreamer(kind: string, width: number, height: number, frames: number, marker?: string) {
  const streamer = startProcess(PYTHON, [STREAMER, kind, String(width), String(height), String(frames), ...(marker ? [marker] : [])], { name: `pickle_streamer ${kind}` });
  const line = await streamer.waitForLine(/^PORT \d+$/, { stream: 'stdout' });
  return { streamer, port: Number(line.split(' ')[1]) };
}

/** What the streamer's frame k is, as BGR: pixel (y, x, c) = (x + 2y + 50c + k) % 256; gray has c = 0 in every channel. */
function expectedBgr(k: number, width: number, height: number, gray: boolean): Buffer {
  const out = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) out[(y * width + x) * 3 + c] = (x + 2 * y + (gray ? 0 : 50 * c) + k) % 256;
    }
  }
  return out;
}

describe('receive() on the tutorial wire', () => {
  it.each([
    ['bgr', 'protocol 4, (H, W, 3)'],
    ['p2', 'protocol 2 (latin-1 text)'],
    ['p5', 'protocol 5 (_frombuffer)'],
    ['fortran', 'a Fortran-order array'],
    ['gray', 'a grayscale (H, W) array'],
    ['bgra', 'a BGRA (H, W, 4) array'],
  ])('shows %s pickles (%s) as the BGR image numpy holds; latency, drops and gaps are n/a', async (kind) => {
    const width = 40;
    const height = 30;
    const { streamer, port } = await pythonStreamer(kind, width, height, 5);
    const sink = new CollectingSink();
    const { stats, log, result } = startReceiving(port, sink);
    expect(await result).toEqual({ outcome: 'sender-finished' });
    await streamer.waitForExit();
    // Frames that arrive together are latest-wins: some may be skipped, never shown out of order.
    expect(sink.images.length).toBeGreaterThanOrEqual(1);
    expect(sink.images.at(-1)?.meta?.seq).toBe(4);
    for (const { image, meta } of sink.images) {
      expect(image).toMatchObject({ width, height, channels: 3 });
      expect(image.data.equals(expectedBgr(meta!.seq, width, height, kind === 'gray'))).toBe(true);
    }
    const summary = stats.summary();
    expect(summary).toMatchObject({ frames: 5, shown: sink.images.length, corrupt: 0, latencyMs: null, senderDropped: null, gaps: null });
    expect(summary.shown + summary.skipped).toBe(5);
    expect(log).toContainEqual(expect.stringMatching(/^first frame from the tutorial streamer at 127\.0\.0\.1:\d+: 40x30, [\d.]+ s after connecting$/));
    expect(log).toContainEqual(expect.stringMatching(/^the sender said bye: the tutorial streamer at 127\.0\.0\.1:\d+ ended its stream after 5 frames \(it serves one client, then exits\)$/));
  });

  it('refuses an os.system pickle, names the global, runs nothing and does not reconnect', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'camstream-evil-'));
    try {
      const marker = path.join(dir, 'pwned');
      const { streamer, port } = await pythonStreamer('evil', 8, 8, 1, marker);
      const sink = new CollectingSink();
      const { stats, result } = startReceiving(port, sink, { reconnect: true });
      const outcome = await result;
      expect(outcome.outcome).toBe('failed');
      const error = (outcome as { error: Error }).error;
      expect(error.message).toMatch(
        /^refused frame 1 of this connection from the tutorial streamer at 127\.0\.0\.1:\d+ \(nothing in it was run\): pickle opcode 0x93 STACK_GLOBAL at byte \d+ on posix\.system is not allowed: only numpy array pickles are accepted \(ERR_NOT_ALLOWED\)$/,
      );
      expect(sink.images).toEqual([]);
      expect(stats.summary().corrupt).toBe(1);
      await streamer.waitForExit();
      expect(existsSync(marker)).toBe(false);
      // The same bytes do run the command when Python's own pickle.loads reads them: the test is live.
      const control = startProcess(PYTHON, ['-c', `import pickle,os\nclass E:\n  def __reduce__(self): return (os.system, ("touch ${marker}",))\npickle.loads(pickle.dumps(E(), protocol=4))`]);
      await control.waitForExit();
      expect(existsSync(marker)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reconnects after a stream that ends inside a frame, and says where it ended', async () => {
    const { streamer, port } = await pythonStreamer('truncated', 16, 12, 3);
    const sink = new CollectingSink();
    const { stats, log, result } = startReceiving(port, sink);
    const outcome = await result;
    await streamer.waitForExit();
    expect(outcome.outcome).toBe('failed');
    expect((outcome as { error: Error }).error.message).toMatch(/^refused the stream from the tutorial streamer at 127\.0\.0\.1:\d+ \(nothing in it was run\): the stream ended \d+ bytes into a \d+-byte pickle \(ERR_TRUNCATED\)$/);
    expect(sink.images).toHaveLength(2);
    expect(stats.summary().corrupt).toBe(1);
    expect(log.some((line) => /bye/.test(line))).toBe(false);

    // With reconnect on, the same failure is retried: a streamer that comes back is watched again.
    let connections = 0;
    const server = net.createServer((socket) => {
      socket.on('error', () => undefined);
      // The first attempt is cut before any byte; the next one gets a frame.
      if (++connections === 1) return socket.destroy();
      const { head, pixels, tail } = encodeTutorialFrame(renderFakeFrame(7, 64, 48));
      socket.end(Buffer.concat([head, pixels, tail]));
    });
    const again = await listenOnFreePort(server);
    try {
      const retrying = startReceiving(again, new CollectingSink(), { reconnect: true, maxFrames: 1 });
      expect(await retrying.result).toEqual({ outcome: 'frames-reached' });
      expect(connections).toBeGreaterThanOrEqual(2);
    } finally {
      server.close();
    }
  });

  it('shows camstream-framed frames pixel for pixel, through pooled buffers, and follows a change of size', async () => {
    const sizes = [
      [320, 240],
      [320, 240],
      [160, 120],
    ] as const;
    const server = net.createServer((socket) => {
      socket.on('error', () => undefined);
      sizes.forEach(([width, height], n) => {
        const { head, pixels, tail } = encodeTutorialFrame(renderFakeFrame(n, width, height));
        // In pieces, as a socket may deliver them: pickles spanning reads land in pooled buffers.
        socket.cork();
        socket.write(head);
        socket.write(pixels);
        socket.write(tail);
        socket.uncork();
      });
      socket.end();
    });
    const port = await listenOnFreePort(server);
    try {
      const sink = new CollectingSink();
      const opened: string[] = [];
      const { stats, log, result } = startReceiving(port, sink, {
        openSinks: async (stream) => {
          opened.push(`${stream.width}x${stream.height}`);
          return [sink];
        },
      });
      expect(await result).toEqual({ outcome: 'sender-finished' });
      // Latest wins: a frame that arrived with a newer one may be skipped, but the last of each size is shown.
      const shown = sink.images.map(({ image }) => readFrameNumber(image));
      expect(shown).toContain(2);
      expect(shown).toEqual([...shown].sort());
      for (const { image } of sink.images) expect(imageDifference(image, renderFakeFrame(readFrameNumber(image)!, image.width, image.height))).toBe(0);
      expect(opened).toEqual(['320x240', '160x120']);
      expect(stats.summary().shown + stats.summary().skipped).toBe(3);
      expect(log).toContain("the tutorial streamer's frames are now 160x120 (were 320x240)");
      expect(stats.summary()).toMatchObject({ frames: 3, corrupt: 0 });
    } finally {
      server.close();
    }
  });

  it('tells a camstream sender from the tutorial streamer, and gives up on it', async () => {
    // What a camstream sender says to a client that never sends its hello.
    const server = net.createServer((socket) => {
      socket.on('error', () => undefined);
      socket.end(encodeMessage({ type: 'error', code: 'ERR_HANDSHAKE_TIMEOUT', reason: 'no hello received in time' }).head);
    });
    const port = await listenOnFreePort(server);
    try {
      const { stats, result } = startReceiving(port, new CollectingSink(), { reconnect: true });
      const outcome = await result;
      expect(outcome.outcome).toBe('failed');
      expect((outcome as { error: Error }).error.message).toBe(`the peer at 127.0.0.1:${port} speaks camstream, not the tutorial's wire: connect without --wire tutorial`);
      expect(stats.summary().corrupt).toBe(0);
    } finally {
      server.close();
    }
  });

  it('on the camstream wire, names the tutorial streamer for what it is', async () => {
    const server = net.createServer((socket) => {
      socket.on('error', () => undefined);
      const { head, pixels, tail } = encodeTutorialFrame(renderFakeFrame(0, 64, 48));
      socket.end(Buffer.concat([head, pixels, tail]));
    });
    const port = await listenOnFreePort(server);
    try {
      const { result } = startReceiving(port, new CollectingSink(), { wire: 'camstream', stats: new ReceiverStats() });
      const outcome = await result;
      expect(outcome.outcome).toBe('failed');
      expect((outcome as { error: Error }).error.message).toMatch(/^the peer at 127\.0\.0\.1:\d+ is not a camstream sender: it sent ".*" \(that is the tutorial's pickle stream: connect with --wire tutorial\)$/);
    } finally {
      server.close();
    }
  });
});
