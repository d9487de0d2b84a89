import type { FrameSink } from '@camstream/media';
import type { OpenCVCodec } from '@camstream/opencv';
import type { FrameHeader } from '@camstream/protocol';
import { HttpViewer } from '../http-viewer';

export interface BrowserSinkOptions {
  host: string;
  port: number;
  title: string;
  codec: OpenCVCodec;
  log: (line: string) => void;
}

/**
 * The browser viewer as a sink. It gets JPEG payloads byte for byte from the stream when it is
 * JPEG (onFrame, which keeps them), and decoded images (encoded to JPEG only while a browser
 * watches) when it is raw or PNG.
 */
export async function startBrowserSink(options: BrowserSinkOptions) {
  const viewer = await HttpViewer.listen({
    host: options.host,
    port: options.port,
    title: options.title,
    encodeJpeg: (image) => options.codec.encode(image, 'jpeg', { quality: 80 }),
    log: options.log,
  });
  options.log(`browser viewer at ${viewer.url} (MJPEG at ${viewer.url}stream.mjpg)`);
  let streamIsJpeg = false;
  const sink: FrameSink = {
    write: (image, meta) => (streamIsJpeg ? undefined : viewer.write(image, meta)),
    // JPEG streams reach the viewer as their payloads; decoded images only for raw and PNG.
    get keepsImages() {
      return !streamIsJpeg && viewer.keepsImages;
    },
    close: async () => undefined, // closed with the run, not with each stream
  };
  /** Keeps JPEG payloads: pass it to receive() with onFrameKeepsPayload (the default). */
  const onFrame = (header: FrameHeader, payload: Buffer) => {
    streamIsJpeg = header.encoding === 'jpeg';
    if (streamIsJpeg) viewer.publishJpeg(payload, header);
  };
  return { viewer, sink, onFrame };
}
