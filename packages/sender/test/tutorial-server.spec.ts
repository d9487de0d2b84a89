import net from 'node:net';
import type { CapturedFrame, Encoding, FrameCodec, FrameSource, RawImage } from '@camstream/media';
import { FakeCamera, imageDifference, readFrameNumber, renderFakeFrame, stallingClient } from '@camstream/testkit';
import { decodeArrayPickle, TutorialFrameDecoder } from '@camstream/tutorial-wire';
import { Broadcast } from '../src/broadcast';
import { pumpFrames, type PumpResult } from '../src/pump';
import { TutorialServer, type TutorialServerOptions } from '../src/tutorial-server';
import { codec, until } from './sender-harness';

// The sender's tutorial wire over real loopback sockets: frames decoded by the strict pickle
// decoder (the Python receiver script is run end to end in packages/e2e).

/** A codec that counts what it is asked to encode: nothing, while only tutorial clients watch. */
class CountingCodec implements FrameCodec {
  encodes = 0;
  encode(image: RawImage, encoding: Encoding, options?: { quality?: number }): Promise<Buffer> {
    this.encodes++;
    return codec.encode(image, encoding, options);
  }
  decode: FrameCodec['decode'] = (...args) => codec.decode(...args);
  resize: FrameCodec['resize'] = (...args) => codec.resize(...args);
}

/**
 * A camera that draws each capture into a buffer given back to it when there is one, like the
 * real sources: pixels recycled while a client still had to write them would change under it.
 */
class RecyclingCamera implements FrameSource {
  readonly info: FrameSource['info'];
  private readonly out = new Set<RawImage>();
  private readonly free: RawImage[] = [];
  reused = 0;

  constructor(private readonly camera: FakeCamera) {
    this.info = camera.info;
  }

  async read(): Promise<CapturedFrame | null> {
    const frame = await this.camera.read();
    if (!frame) return null;
    const reuse = this.free.pop();
    let image = frame.image;
    if (reuse) {
      frame.image.data.copy(reuse.data);
      image = reuse;
      this.reused++;
    }
    this.out.add(image);
    return { image, captureTimeMs: frame.captureTimeMs };
  }

  recycle(image: RawImage): void {
    if (this.out.delete(image)) this.free.push(image);
  }

  close(): Promise<void> {
    return this.camera.close();
  }
}

/** A client that reads the tutorial's wire and decodes every pickle strictly. */
class TutorialClient {
  readonly images: RawImage[] = [];
  readonly socket: net.Socket;
  readonly closed: Promise<void>;
  error: Error | undefined;
  private readonly decoder = new TutorialFrameDecoder();

  constructor(port: number) {
    this.socket = net.connect({ port, host: '127.0.0.1' });
    this.socket.on('error', () => undefined);
    this.socket.on('data', (chunk: Buffer) => {
      try {
        for (const pickle of this.decoder.push(chunk)) {
          const image = decodeArrayPickle(pickle);
          this.images.push({ width: image.width, height: image.height, channels: image.channels, data: Buffer.from(image.data) });
        }
      } catch (error) {
        this.error = error as Error;
        this.socket.destroy();
      }
    });
    // The end of the stream must fall between frames.
    this.socket.on('end', () => {
      try {
        this.decoder.end();
      } catch (error) {
        this.error = error as Error;
      }
    });
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve()));
  }

  async close(): Promise<void> {
    this.socket.destroy();
    await this.closed;
  }
}

interface TutorialSender extends AsyncDisposable {
  server: TutorialServer;
  log: string[];
  pump(): Promise<PumpResult>;
}

async function startTutorialSender(source: FrameSource, options: { codec?: FrameCodec; server?: Partial<TutorialServerOptions> } = {}): Promise<TutorialSender> {
  const { width, height, fps } = source.info;
  const broadcast = new Broadcast({ codec: options.codec ?? codec, stream: { width, height, fps, pixelFormat: 'bgr24', encoding: 'raw-bgr', source: source.info.description } });
  const log: string[] = [];
  const server = await TutorialServer.listen({ host: '127.0.0.1', port: 0, broadcast, maxViewers: 8, log: (line) => log.push(line), ...options.server });
  const stop = new AbortController();
  let pumping: Promise<PumpResult> | undefined;
  return {
    server,
    log,
    pump: () => (pumping ??= pumpFrames({ source, broadcast, signal: stop.signal })),
    async [Symbol.asyncDispose]() {
      stop.abort();
      await pumping;
      await server.close('test over');
      await source.close();
    },
  };
}

/** Every image is the fake camera's frame for the number it carries, pixel for pixel; numbers only go up. */
function expectFakeFrames(images: readonly RawImage[]): void {
  let previous = -1;
  for (const image of images) {
    const n = readFrameNumber(image);
    expect(n).not.toBeNull();
    expect(n!).toBeGreaterThan(previous);
    previous = n!;
    expect(imageDifference(image, renderFakeFrame(n!, image.width, image.height))).toBe(0);
  }
}

describe('the tutorial wire at the sender', () => {
  it('sends each captured image as a numpy uint8 (H, W, 3) pickle, and encodes nothing', async () => {
    const counting = new CountingCodec();
    await using sender = await startTutorialSender(new FakeCamera({ width: 320, height: 240, fps: 60 }), { codec: counting });
    const client = new TutorialClient(sender.server.port);
    await until(() => sender.server.viewerList.length === 1, 'the client to be served');
    void sender.pump();
    await until(() => client.images.length >= 20, '20 frames');
    await client.close();
    expect(client.error).toBeUndefined();
    expect(client.images[0]).toMatchObject({ width: 320, height: 240, channels: 3 });
    expectFakeFrames(client.images);
    expect(counting.encodes).toBe(0);
    await until(() => sender.log.some((line) => / left: /.test(line)), 'the client to leave');
    expect(sender.log.find((line) => / left: /.test(line))).toMatch(/^tutorial client #1 \(127\.0\.0\.1:\d+\) left: \d+ frames sent, \d+ frames dropped, [\d.]+ MB$/);
  });

  it('serves many clients at once: one that reads nothing drops frames (counted, logged) and is cut off, the others get every frame they can take', async () => {
    // Recycled buffers: a capture given back while a client still writes it would fail the pixel check.
    const source = new RecyclingCamera(new FakeCamera({ width: 640, height: 480, fps: 60 }));
    await using sender = await startTutorialSender(source, { server: { stalledViewerTimeoutMs: 1500, dropLogIntervalMs: 200 } });
    await using stalled = await stallingClient(sender.server.port);
    const clients = [new TutorialClient(sender.server.port), new TutorialClient(sender.server.port)];
    await until(() => sender.server.viewerList.length === 3, 'three clients to be served');
    void sender.pump();
    const stalledViewer = sender.server.viewerList.find((v) => v.name === `127.0.0.1:${stalled.socket.localPort}`)!;
    await until(() => stalledViewer.dropped >= 10, 'the stalled client to drop 10 frames');
    // Meanwhile the others took frames at the camera's pace.
    await until(() => clients.every((c) => c.images.length >= 60), '60 frames at each reading client');
    expect(sender.log).toContainEqual(expect.stringMatching(new RegExp(`^tutorial client #${stalledViewer.id} \\(127\\.0\\.0\\.1:\\d+\\): \\d+ frames dropped in the last [\\d.]+ s, \\d+ in all`)));
    await until(() => sender.log.some((l) => /took no data for 1\.5 s: disconnected/.test(l)), 'the stalled client to be cut off');
    expect(sender.log).toContainEqual(expect.stringMatching(/^tutorial client #\d+ \(127\.0\.0\.1:\d+\) took no data for 1\.5 s: disconnected \(its socket took no bytes\)$/));
    await until(() => sender.server.viewerList.length === 2, 'the stalled client to be gone');
    for (const client of clients) {
      await client.close();
      expect(client.error).toBeUndefined();
      expectFakeFrames(client.images);
    }
    expect(source.reused).toBeGreaterThan(0);
  });

  it('closes a client beyond --max-viewers at once, and ends the others at a frame boundary when it stops', async () => {
    await using sender = await startTutorialSender(new FakeCamera({ width: 160, height: 120, fps: 60 }), { server: { maxViewers: 1 } });
    const first = new TutorialClient(sender.server.port);
    await until(() => sender.server.viewerList.length === 1, 'the first client');
    const second = new TutorialClient(sender.server.port);
    await second.closed;
    expect(second.images).toEqual([]);
    expect(sender.log).toContainEqual(expect.stringMatching(/^refused 127\.0\.0\.1:\d+: the sender is at its limit of 1 tutorial clients$/));
    void sender.pump();
    await until(() => first.images.length >= 5, '5 frames');
    await sender.server.close('sender shutting down');
    await first.closed;
    // The stream ended between frames: the decoder holds no partial frame.
    expect(first.error).toBeUndefined();
    expectFakeFrames(first.images);
  });
});
