import { OpenCVCodec } from '@camstream/opencv';
import { Broadcast, pumpFrames, StreamServer } from '@camstream/sender';
import { FakeCamera } from '@camstream/testkit';

/*
 * A camstream sender in the test's process whose camera is the testkit's fake camera: the frames
 * carry their number in their pixels (from `startAt` on), so a test can tell from any picture,
 * in a window, a file or a browser, which camera and which frame it is. The sender itself is the
 * real one (Broadcast, StreamServer, pumpFrames), as the app runs it.
 */

export interface FakeSender {
  port: number;
  camera: FakeCamera;
  server: StreamServer;
  /** Stops capturing and says bye to every receiver (the camera "stops"). */
  stop(): Promise<void>;
}

export async function startFakeSender(options: { width: number; height: number; fps: number; startAt: number; name?: string }): Promise<FakeSender> {
  const camera = new FakeCamera({ width: options.width, height: options.height, fps: options.fps, startAt: options.startAt });
  const broadcast = new Broadcast({
    codec: new OpenCVCodec(),
    stream: { width: options.width, height: options.height, fps: options.fps, pixelFormat: 'bgr24', encoding: 'jpeg', quality: 85, source: `fake camera from ${options.startAt}` },
  });
  const server = await StreamServer.listen({ host: '127.0.0.1', port: 0, broadcast, maxViewers: 8, ...(options.name ? { name: options.name } : {}) });
  const abort = new AbortController();
  const pumping = pumpFrames({ source: camera, broadcast, signal: abort.signal });
  let stopped: Promise<void> | undefined;
  return {
    port: server.port,
    camera,
    server,
    stop: () => {
      stopped ??= (async () => {
        abort.abort();
        await pumping.catch(() => undefined);
        await server.close('the fake camera stopped');
        await camera.close();
      })();
      return stopped;
    },
  };
}
