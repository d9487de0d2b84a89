import { extname } from 'node:path';
import { Mp4Recorder, Mp4RecorderError } from '@camstream/ffmpeg';
import type { FrameSink } from '@camstream/media';
import type { FrameHeader, StreamDescription } from '@camstream/protocol';

/** Files an h264 stream is recorded into as received: MP4 (ffmpeg's mp4 muxer). */
export function recordsAccessUnits(file: string, stream: StreamDescription): boolean {
  return stream.encoding === 'h264' && ['.mp4', '.m4v'].includes(extname(file).toLowerCase());
}

/**
 * `--record FILE.mp4` of an h264 stream: every access unit as it was received, into a fragmented
 * MP4 (Mp4Recorder: ffmpeg -c copy, no re-encoding), stamped with its capture time, starting at
 * the first keyframe. Access units arrive through write AccessUnit() (every checked frame, before
 * decoding: the file gets every frame, not only those shown); as a FrameSink it ignores decoded
 * pictures and finishes the file on close(). Frames of a rung of another size than the stream's
 * are not recorded (an MP4 track has one size; the reference sender keeps every rung at the
 * stream's size).
 */
export class Mp4RecordingSink implements FrameSink {
  private readonly recorder: Mp4Recorder;
  private otherSize = 0;
  private failure: Error | undefined;

  /** Starts ffmpeg; throws Mp4RecorderError when the file's directory does not exist. */
  constructor(
    readonly file: string,
    private readonly stream: StreamDescription,
    /** The recording cannot go on (ffmpeg failed): the run must stop with this error. */
    private readonly stop: (error: Error) => void,
  ) {
    this.recorder = new Mp4Recorder(file, { width: stream.width, height: stream.height });
  }

  /** Frames in the file. */
  get writtenFrames(): number {
    return this.recorder.writtenFrames;
  }

  /** Frames not in it: before the first keyframe, refused, of another size, or behind a slow disk. */
  get skippedFrames(): number {
    return this.recorder.skippedFrames + this.otherSize;
  }

  writeAccessUnit(header: FrameHeader, payload: Buffer): void {
    if (this.failure) return;
    if (header.width !== this.stream.width || header.height !== this.stream.height) {
      this.otherSize++;
      return;
    }
    this.recorder.write(payload, { captureTime: header.captureTime }).catch((error: Error) => {
      // An access unit it refused is skipped (the file goes on from the next keyframe); a recorder that failed ends the run.
      if (!(error instanceof Mp4RecorderError) || this.failure) return;
      this.failure = error;
      this.stop(error);
    });
  }

  /** Decoded pictures are not what it records. */
  write(): void {}

  async close(): Promise<void> {
    await this.recorder.close();
  }
}
