import type { PreparedH264Decoder } from '@camstream/ffmpeg';
import type { FrameCodec } from '@camstream/media';
import type { HubCamera } from '../hub/hub-camera';
import { receive, type ReceiverOptions, type ReceiverResult } from '../receiver';

export interface TcpCameraOptions {
  /** camstream, or the tutorial's pickles (see ReceiverOptions.wire). */
  wire: 'camstream' | 'tutorial';
  host: string;
  port: number;
  /** This receiver's name, told to the sender. */
  name: string;
  codec: FrameCodec;
  maxFrames: number | undefined;
  reconnect: boolean;
  maxStreamSize: ReceiverOptions['maxStreamSize'];
  security: ReceiverOptions['security'];
  /** An H.264 decoder process started ahead for this sender's stream. */
  preparedDecoder?: PreparedH264Decoder;
  signal: AbortSignal;
}

/**
 * One camera from one TCP sender: receive() (connect, check, acknowledge, reconnect) feeding the
 * camera's pipeline, its sinks and its figures.
 */
export function watchTcpCamera(camera: HubCamera, options: TcpCameraOptions): Promise<ReceiverResult> {
  return receive({
    wire: options.wire,
    host: options.host,
    port: options.port,
    name: options.name,
    codec: options.codec,
    openSinks: camera.openSinks,
    lastingSinks: camera.lastingSinks,
    onStream: (stream, { senderName }) => camera.streamStarted(stream, senderName),
    onFrame: (header, payload) => camera.frameArrived(header, payload),
    onFrameKeepsPayload: (header) => camera.keepsPayload(header),
    ...(options.maxFrames === undefined ? {} : { maxFrames: options.maxFrames }),
    reconnect: options.reconnect,
    ...(options.maxStreamSize ? { maxStreamSize: options.maxStreamSize } : {}),
    ...(options.security ? { security: options.security } : {}),
    ...(options.preparedDecoder ? { preparedH264Decoder: options.preparedDecoder } : {}),
    stats: camera.stats,
    log: camera.log,
    signal: options.signal,
  });
}
