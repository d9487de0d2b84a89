import type { FrameCodec, FrameSource } from '@camstream/media';
import { OpenCVCodec } from '@camstream/opencv';
import type { Encoding } from '@camstream/protocol';
import { Broadcast } from '../src/broadcast';
import type { BroadcastOptions, BroadcastResult } from '../src/broadcast';
import { pumpFrames, type PumpResult } from '../src/pump';
import { StreamServer, type StreamServerOptions } from '../src/stream-server';

/** The real codec, shared: its encode() is what the rung tests count. */
export const codec = new OpenCVCodec();

export interface TestSender extends AsyncDisposable {
  readonly server: StreamServer;
  readonly broadcast: Broadcast;
  readonly log: string[];
  /** Frames published so far. */
  readonly published: number;
  /** Starts the capture loop; resolves when it ends (the source ended, or stop()). */
  pump(): Promise<PumpResult>;
  /** Stops the capture loop and waits for it. */
  stopPump(): Promise<void>;
}

/**
 * A real StreamServer on 127.0.0.1 with a Broadcast over `source` and the real pump, as the app
 * wires them. Disposing stops the pump, closes the server and the source.
 */
export async function startSender(
  source: FrameSource,
  encoding: Encoding,
  options: {
    quality?: number;
    /** H.264: rung 0's bitrate (bits/s) and the encoders' settings. */
    bitrate?: number;
    h264?: BroadcastOptions['h264'];
    codec?: FrameCodec;
    server?: Partial<Omit<StreamServerOptions, 'broadcast'>>;
    onPublished?: (result: BroadcastResult) => void;
  } = {},
): Promise<TestSender> {
  const { width, height, fps } = source.info;
  const broadcast = new Broadcast({
    codec: options.codec ?? codec,
    stream: {
      width,
      height,
      fps,
      pixelFormat: 'bgr24',
      encoding,
      ...(options.quality ? { quality: options.quality } : {}),
      ...(options.bitrate ? { bitrate: options.bitrate } : {}),
      source: source.info.description,
    },
    ...(options.h264 ? { h264: options.h264 } : {}),
  });
  const log: string[] = [];
  const server = await StreamServer.listen({ host: '127.0.0.1', port: 0, broadcast, maxViewers: 8, log: (line) => log.push(line), ...options.server });
  const stop = new AbortController();
  let published = 0;
  let pumping: Promise<PumpResult> | undefined;
  const stopPump = async () => {
    stop.abort();
    await pumping;
  };
  return {
    server,
    broadcast,
    log,
    get published() {
      return published;
    },
    pump() {
      pumping ??= pumpFrames({
        source,
        broadcast,
        onPublished: (result) => {
          published++;
          options.onPublished?.(result);
        },
        signal: stop.signal,
      });
      return pumping;
    },
    stopPump,
    async [Symbol.asyncDispose]() {
      await stopPump();
      await server.close('test over');
      await broadcast.close();
      await source.close();
    },
  };
}

/** Resolves once `condition()` holds, looking again every 10 ms; rejects after timeoutMs. */
export async function until(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
