import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadOpenCV } from '@camstream/opencv';
import { encodeMessage, type StreamDescription } from '@camstream/protocol';
import type { FrameCodec } from '@camstream/media';
import { receive, ReceiverStats, runSession } from '@camstream/receiver';
import { FakeCamera, listenOnFreePort, readFrameNumber, renderFakeFrame, startApp } from '@camstream/testkit';
import { codec, FakeSender, frameMessage, pump, senderHello, startReceiver, startServer, until, writeAll } from './harness';

// The receiver's own limits and messages, against fake senders and the real receiver app: what it
// accepts to allocate for a stream, what it says to a peer that is not a sender, and that what
// it reports as shown is what it recorded.

const headless = { DISPLAY: undefined, WAYLAND_DISPLAY: undefined };
const SMALL_JPEG_STREAM: StreamDescription = { width: 64, height: 48, fps: 30, pixelFormat: 'bgr24', encoding: 'jpeg' };

/** The resident set of another process, in MB (Linux). */
function processRssMb(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]) / 1024;
}

/** A small JPEG whose frame header claims width x height: its few bytes of image data end long before that. */
async function jpegClaiming(width: number, height: number): Promise<Buffer> {
  const jpeg = Buffer.from(await codec.encode(renderFakeFrame(1, 64, 48), 'jpeg', { quality: 80 }));
  const sof = jpeg.indexOf(Buffer.from([0xff, 0xc0]));
  jpeg.writeUInt16BE(height, sof + 5);
  jpeg.writeUInt16BE(width, sof + 7);
  return jpeg;
}

/** A fake sender that announces `stream` and puts each connection's socket in `sockets`, for the test to write to. */
function announcingSender(stream: StreamDescription, sockets: net.Socket[]): Promise<FakeSender> {
  return FakeSender.start(async (socket) => {
    await FakeSender.helloFrom(socket);
    await writeAll(socket, senderHello(stream));
    // Pings keep the receiver's dead-connection timer from ending the session while the test waits.
    const pings = setInterval(() => socket.write(encodeMessage({ type: 'ping', time: Date.now() }).head), 1000);
    socket.once('close', () => clearInterval(pings));
    sockets.push(socket);
  });
}

describe('--max-size: the largest stream a receiver accepts to decode', () => {
  it('refuses a 16000x16000 stream in the handshake by default, tells the sender why and does not retry', async () => {
    await using fake = await FakeSender.start(async (socket) => {
      await FakeSender.helloFrom(socket);
      await writeAll(socket, senderHello({ ...SMALL_JPEG_STREAM, width: 16000, height: 16000 }));
    });
    const { stats, log, result } = startReceiver(fake.port, { reconnect: true, name: 'limited' });
    const outcome = await result;
    expect(outcome.outcome).toBe('failed');
    const { error } = outcome as { error: Error & { code?: string } };
    expect(error.message).toBe('the sender announced a 16000x16000 stream, larger than this receiver accepts (7680x4320; see --max-size)');
    expect(error.code).toBe('ERR_STREAM_TOO_LARGE');
    await until(() => fake.errorsReceived.length > 0, 'the error message to reach the sender');
    expect(fake.errorsReceived[0]).toEqual({ type: 'error', code: 'ERR_STREAM_TOO_LARGE', reason: error.message });
    expect(fake.connections).toBe(1);
    // A stream that is too large is not corrupt bytes, and is reported once: by the caller, from the result.
    expect(stats.corrupt).toBe(0);
    expect(log.join('\n')).not.toMatch(/16000x16000/);
  });

  it('the app says why once and exits 1; --max-size raises the limit', async () => {
    await using fake = await FakeSender.start(async (socket) => {
      await FakeSender.helloFrom(socket);
      await writeAll(socket, senderHello({ ...SMALL_JPEG_STREAM, width: 8000, height: 6000 }));
    });
    await using refused = startApp('receiver', ['--port', String(fake.port), '--display', 'off', '--quiet'], { env: headless });
    expect(await refused.waitForExit(30_000)).toEqual({ code: 1, signal: null });
    expect(refused.stderrLines.filter((l) => l.includes('8000x6000'))).toEqual([
      'camstream-receiver: the sender announced a 8000x6000 stream, larger than this receiver accepts (7680x4320; see --max-size)',
    ]);

    await using allowed = startApp('receiver', ['--port', String(fake.port), '--display', 'off', '--quiet', '--max-size', '8000x6000'], { env: headless });
    await allowed.waitForLine(/connected to 127\.0\.0\.1:\d+: stream 8000x6000 jpeg/, { stream: 'stderr', timeoutMs: 30_000 });
  });

  it('small bad JPEGs on a large stream leave no memory behind in the receiver process', async () => {
    const WIDTH = 7680;
    const HEIGHT = 4320;
    const frameMb = (WIDTH * HEIGHT * 3) / 1024 / 1024;
    const bad = await jpegClaiming(WIDTH, HEIGHT);
    const sockets: net.Socket[] = [];
    await using fake = await announcingSender({ ...SMALL_JPEG_STREAM, width: WIDTH, height: HEIGHT }, sockets);
    await using receiver = startApp('receiver', ['--port', String(fake.port), '--display', 'off', '--no-reconnect', '--quiet'], { env: headless });
    await receiver.waitForLine(/connected to .* 7680x4320 jpeg/, { stream: 'stderr', timeoutMs: 30_000 });
    const baseline = processRssMb(receiver.pid);
    const failures = () => receiver.stderrLines.filter((l) => l.includes('could not decode a frame')).length;
    // One at a time, each after the previous one failed, so that every frame is decoded (none skipped).
    const count = 4;
    for (let seq = 0; seq < count; seq++) {
      await writeAll(sockets[0]!, frameMessage(bad, { seq, captureTime: Date.now(), width: WIDTH, height: HEIGHT, channels: 3, encoding: 'jpeg' }));
      await until(() => failures() > seq, `the receiver to fail on frame ${seq}`, 30_000);
    }
    // Each failed decode filled a buffer of a whole frame: none of them may stay. (Their release is
    // up to the garbage collector, so wait for it rather than expect it at once.)
    let growth = processRssMb(receiver.pid) - baseline;
    const deadline = Date.now() + 20_000;
    while (growth >= frameMb / 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      growth = processRssMb(receiver.pid) - baseline;
    }
    process.stdout.write(`receiver RSS after ${count} failed ${WIDTH}x${HEIGHT} decodes: ${growth.toFixed(1)} MB above ${baseline.toFixed(1)} MB\n`);
    expect(growth).toBeLessThan(frameMb / 2);
    expect(receiver.exitedWith).toBeUndefined();
    expect(receiver.stderrLines.join('\n')).toMatch(/could not decode a frame: jpeg payload of \d+ bytes is not a decodable image: it is too small for a 7680x4320 image/);
  });
});

it('a buffer that a failed decode wrote into is not handed to the next decode', async () => {
  const good = await codec.encode(renderFakeFrame(1, 64, 48), 'jpeg', { quality: 80 });
  // Whole headers and an end-of-image marker, so the codec takes a buffer, then fails on the data.
  const broken = Buffer.concat([good.subarray(0, Math.floor(good.length * 0.6)), Buffer.from([0xff, 0xd9])]);
  const frame = (seq: number, payload: Buffer) => frameMessage(payload, { seq, captureTime: Date.now(), width: 64, height: 48, channels: 3, encoding: 'jpeg' });
  const stats = new ReceiverStats();
  await using fake = await FakeSender.start(async (socket) => {
    await FakeSender.helloFrom(socket);
    await writeAll(socket, senderHello(SMALL_JPEG_STREAM));
    await writeAll(socket, frame(0, broken));
    // The next frame only once the first one has failed, so that it is not skipped.
    await until(() => stats.corrupt === 1, 'the broken frame to fail');
    await writeAll(socket, frame(1, good));
  });
  const decodedInto: Buffer[] = [];
  const watching: FrameCodec = {
    encode: (image, encoding, options) => codec.encode(image, encoding, options),
    resize: (image, width, height, into) => codec.resize(image, width, height, into),
    decode: (payload, encoding, shape, into) => {
      const take = typeof into === 'function' ? into : () => into!;
      return codec.decode(payload, encoding, shape, () => {
        const buffer = take();
        decodedInto.push(buffer);
        return buffer;
      });
    },
  };
  const result = receive({
    host: '127.0.0.1',
    port: fake.port,
    name: 'frugal',
    codec: watching,
    openSinks: async () => [],
    maxFrames: 2,
    reconnect: false,
    stats,
    log: () => undefined,
    signal: new AbortController().signal,
  });
  expect(await result).toEqual({ outcome: 'frames-reached' });
  expect(stats.summary()).toMatchObject({ frames: 2, shown: 1, corrupt: 1 });
  expect(decodedInto).toHaveLength(2);
  expect(decodedInto[1]).not.toBe(decodedInto[0]);
});

describe('a peer that is not a camstream sender', () => {
  it('an HTTP server is named as such, with the start of its answer, and is not counted as corrupt', async () => {
    const server = http.createServer((_request, response) => response.end('hello'));
    const port = await listenOnFreePort(server);
    try {
      const end = await runSession({ host: '127.0.0.1', port, name: 'lost' }, { onStream: () => undefined, onFrame: () => undefined });
      expect(end).toMatchObject({ kind: 'failed' });
      const { message } = (end as { error: Error }).error;
      expect(message).toBe(`the peer at 127.0.0.1:${port} is not a camstream sender: it sent "HTTP/1.1 400 Bad Request\\r\\n..."`);

      const { stats, result } = startReceiver(port, { name: 'lost' });
      expect(await result).toMatchObject({ outcome: 'failed', error: expect.objectContaining({ message }) });
      expect(stats.corrupt).toBe(0);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('bytes that are not even text are quoted printably', async () => {
    await using fake = await FakeSender.start(async (socket) => {
      await FakeSender.helloFrom(socket);
      await writeAll(socket, Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0x7f, 0x41, 0x22, 0x5c, 0x0a, 0x42]));
    });
    const end = await runSession({ host: '127.0.0.1', port: fake.port, name: 'lost' }, { onStream: () => undefined, onFrame: () => undefined });
    expect((end as { error: Error }).error.message).toBe(`the peer at 127.0.0.1:${fake.port} is not a camstream sender: it sent "\\x16\\x03\\x01\\x00\\xff\\x7fA\\"\\\\\\n..."`);
  });
});

it('after a sender said bye, a connection it closes at once gets no TLS hint', async () => {
  const jpeg = await codec.encode(renderFakeFrame(0, 64, 48), 'jpeg', { quality: 80 });
  // Like a sender that is shutting down: the first connection gets frames and a bye; later ones
  // are accepted and closed before any hello.
  await using fake = await FakeSender.start(async (socket, connection) => {
    if (connection > 1) return void socket.end();
    await FakeSender.helloFrom(socket);
    await writeAll(socket, senderHello(SMALL_JPEG_STREAM));
    for (let seq = 0; seq < 2; seq++) await writeAll(socket, frameMessage(jpeg, { seq, captureTime: Date.now(), width: 64, height: 48, channels: 3, encoding: 'jpeg' }));
    await writeAll(socket, encodeMessage({ type: 'bye', reason: 'sender shutting down' }).head);
  });
  const { log, result, stop } = startReceiver(fake.port, { reconnect: true, name: 'left behind' });
  try {
    await until(() => log.some((l) => l.startsWith('the sender closed the connection')), 'the receiver to reconnect and be closed on');
  } finally {
    stop();
  }
  await result;
  const bye = log.indexOf('the sender said bye: sender shutting down');
  const closed = log.findIndex((l) => l.startsWith('the sender closed the connection'));
  expect(bye).toBeGreaterThanOrEqual(0);
  expect(closed).toBeGreaterThan(bye);
  expect(log[closed]).toBe('the sender closed the connection before its hello');
});

it('a receiver refused by the sender says why once', async () => {
  await using fake = await FakeSender.start(async (socket) => {
    await FakeSender.helloFrom(socket);
    await writeAll(socket, encodeMessage({ type: 'error', code: 'ERR_FULL', reason: 'the sender is at its limit of 1 viewers' }).head);
    socket.end();
  });
  await using receiver = startApp('receiver', ['--port', String(fake.port), '--display', 'off', '--no-reconnect', '--quiet'], { env: headless });
  expect(await receiver.waitForExit(30_000)).toEqual({ code: 1, signal: null });
  expect(receiver.stderrLines.filter((l) => l.includes('at its limit'))).toEqual([
    'camstream-receiver: the sender refused the connection: the sender is at its limit of 1 viewers (ERR_FULL)',
  ]);
});

describe('recording', () => {
  let workDir: string;
  beforeAll(() => {
    workDir = mkdtempSync(path.join(tmpdir(), 'camstream-receiver-limits-'));
  });
  afterAll(() => rmSync(workDir, { recursive: true, force: true }));

  it('records every frame it reports shown, from the very first one', async () => {
    const frames = 60;
    const camera = new FakeCamera({ width: 320, height: 240, fps: 30, frames });
    const server = await startServer(camera, 'jpeg');
    const file = path.join(workDir, 'first-frames.avi');
    try {
      await using receiver = startApp('receiver', ['--port', String(server.port), '--record', file, '--no-reconnect', '--display', 'off', '--stats-json', '--quiet'], { env: headless });
      await until(() => server.viewerList.length === 1, 'the receiver to join', 30_000);
      // The stream starts the moment the receiver is there: frame 0 arrives while its recorder is still starting.
      await pump(server, camera);
      await server.close('end of stream');
      expect(await receiver.waitForExit(30_000)).toEqual({ code: 0, signal: null });
      const summary = JSON.parse(receiver.stdoutLines.findLast((l) => l.includes('"summary"'))!) as { frames: number; shown: number; skipped: number };
      expect(summary.frames).toBe(frames);

      const cv = loadOpenCV();
      const capture = new cv.VideoCapture(file);
      const numbers: number[] = [];
      try {
        for (let mat = capture.read(); !mat.empty; mat = capture.read()) {
          numbers.push(readFrameNumber({ width: mat.cols, height: mat.rows, channels: 3, data: mat.getData() }) ?? -1);
        }
      } finally {
        capture.release();
      }
      expect(numbers.length).toBe(summary.shown);
      expect(numbers.slice(0, 3)).toEqual([0, 1, 2]);
      expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
      expect(numbers.at(-1)).toBe(frames - 1);
      expect(summary.shown + summary.skipped).toBe(frames);
    } finally {
      await server.close('test over');
    }
  });

  it('a file the recorder cannot open ends the run with the reason, said once', async () => {
    const camera = new FakeCamera({ width: 320, height: 240, fps: 30 });
    const server = await startServer(camera, 'jpeg');
    const stop = new AbortController();
    const pumping = pump(server, camera, stop.signal);
    // No container for this extension: OpenCV opens no file, which the recorder only learns once its process has started.
    const file = path.join(workDir, 'recording.unknown-container');
    try {
      await using receiver = startApp('receiver', ['--port', String(server.port), '--record', file, '--display', 'off', '--quiet'], { env: headless });
      expect(await receiver.waitForExit(30_000)).toEqual({ code: 1, signal: null });
      expect(receiver.stderrLines.filter((l) => l.includes('cannot record'))).toEqual([
        `camstream-receiver: cannot record to ${file}: OpenCV could not open it for writing with codec MJPG (unwritable, or codec and container do not fit)`,
      ]);
    } finally {
      stop.abort();
      await pumping;
      await server.close('test over');
    }
  });
});
