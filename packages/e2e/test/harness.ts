import type { FrameSink, FrameSource, RawImage } from '@camstream/media';
import { OpenCVCodec } from '@camstream/opencv';
import { encodeMessage, PROTOCOL_NAME, PROTOCOL_VERSION, type Encoding } from '@camstream/protocol';
import { receive, ReceiverStats, type ReceiverResult } from '@camstream/receiver';
import { imageDifference, readFrameNumber, renderFakeFrame } from '@camstream/testkit';
import { pumpFrames, StreamServer, type PumpResult } from '@camstream/sender';

/** Shared by the in-process stream tests: a real server, real codec, real sockets. */
export const codec = new OpenCVCodec();

export async function startServer(source: FrameSource, encoding: Encoding, options: { port?: number; maxViewers?: number } = {}) {
  const { width, height, fps } = source.info;
  return StreamServer.listen({
    host: '127.0.0.1',
    port: options.port ?? 0,
    stream: { width, height, fps, pixelFormat: 'bgr24', encoding, source: 'fake camera' },
    maxViewers: options.maxViewers ?? 8,
  });
}

export function pump(server: StreamServer, source: FrameSource, encoding: Encoding, signal?: AbortSignal): Promise<PumpResult> {
  return pumpFrames({ source, codec, encoding, quality: 80, publish: (f) => server.broadcast(f), ...(signal ? { signal } : {}) });
}

/** A sink that checks every image it is given carries the fake camera's content for its number. */
export class CheckingSink implements FrameSink {
  readonly numbers: number[] = [];
  worstDifference = 0;
  closed = false;

  write(image: RawImage): void {
    const n = readFrameNumber(image);
    if (n === null) throw new Error('a shown image carries no frame number');
    this.numbers.push(n);
    this.worstDifference = Math.max(this.worstDifference, imageDifference(image, renderFakeFrame(n, image.width, image.height)));
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

export interface TestReceiver {
  stats: ReceiverStats;
  sink: CheckingSink;
  result: Promise<ReceiverResult>;
  stop(): void;
  log: string[];
}

export function startReceiver(port: number, options: { maxFrames?: number; reconnect?: boolean; name?: string } = {}): TestReceiver {
  const stats = new ReceiverStats();
  const sink = new CheckingSink();
  const abort = new AbortController();
  const log: string[] = [];
  const result = receive({
    host: '127.0.0.1',
    port,
    name: options.name ?? 'test receiver',
    codec,
    openSinks: async () => [sink],
    ...(options.maxFrames === undefined ? {} : { maxFrames: options.maxFrames }),
    reconnect: options.reconnect ?? false,
    backoffMs: { min: 20, max: 200 },
    stats,
    log: (line) => log.push(line),
    signal: abort.signal,
  });
  return { stats, sink, result, stop: () => abort.abort(), log };
}

export async function until(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function receiverHello(name = 'raw test client'): Buffer {
  return encodeMessage({ type: 'hello', protocol: PROTOCOL_NAME, version: PROTOCOL_VERSION, role: 'receiver', name }).head;
}
