import type { StreamDescription } from '@camstream/protocol';
import type { CheckedFrame, FramePipeline } from './frame-pipeline';
import type { H264FramePipeline } from './h264-pipeline';

/**
 * A camera's decode stage, whatever the stream's encoding: raw, PNG and JPEG frames go to the
 * latest-wins FramePipeline (decoded in parallel), H.264 frames to the H264FramePipeline (one
 * decoder that sees every access unit in order, latest-wins after it). Both feed the same sinks.
 */
export class EncodingPipeline {
  constructor(
    private readonly frames: FramePipeline,
    private readonly h264: H264FramePipeline,
  ) {}

  /** A new connection's stream (before its first frame). */
  setStream(stream: StreamDescription): void {
    if (stream.encoding === 'h264') {
      this.h264.setStream(stream);
    } else {
      this.frames.setStream(stream);
      this.h264.dropPreparedDecoder();
    }
  }

  offer(frame: CheckedFrame): void {
    if (frame.header.encoding === 'h264') this.h264.offer(frame);
    else this.frames.offer(frame);
  }

  /** Resolves when nothing waits, decodes or shows. */
  async idle(): Promise<void> {
    await Promise.all([this.frames.idle(), this.h264.idle()]);
  }

  /** Once idle, stops the H.264 decoder (an ffmpeg process) if one runs. */
  async close(): Promise<void> {
    await Promise.all([this.frames.idle(), this.h264.close()]);
  }
}
