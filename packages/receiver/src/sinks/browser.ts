import type { FrameSink } from '@camstream/media';
import type { OpenCVCodec } from '@camstream/opencv';
import type { FrameHeader } from '@camstream/protocol';

export interface BrowserSinkOptions {
  host: string;
  port: number;
  title: string;
  codec: OpenCVCodec;
  log: (line: string) => void;
}

/**
 * The browser server (@camstream/browser) as a sink. It gets every frame as received (a JPEG
 * stream's payload is forwarded byte for byte as rung 0) and then its decoded image, from which it
 * encodes what browsers need: rung 0 of raw and PNG streams, and lower rungs for slow tabs.
 */
export async function startBrowserSink(options: BrowserSinkOptions) {
  const { BrowserServer } = await import('@camstream/browser');
  const viewer = await BrowserServer.listen({ host: options.host, port: options.port, title: options.title, codec: options.codec, log: options.log });
  options.log(`browser viewer at ${viewer.url} (MJPEG at ${viewer.url}stream.mjpg)`);
  const sink: FrameSink = {
    write: (image, meta) => viewer.write(image, meta),
    keepsImages: viewer.keepsImages,
    close: async () => undefined, // closed with the run, not with each stream
  };
  const onFrame = (header: FrameHeader, payload: Buffer) => viewer.received(header, payload);
  /** The server keeps JPEG payloads (to forward them): those must never be reused. */
  const keepsPayload = (header: FrameHeader) => header.encoding === 'jpeg';
  return { viewer, sink, onFrame, keepsPayload };
}
