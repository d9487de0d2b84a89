/**
 * One class per way the FFmpeg adapter can fail. Each has a stable `code` that callers and tests
 * branch on, and a message that names what was wrong (sizes, NAL types, the process's last words).
 */
export type FfmpegAdapterErrorCode =
  | 'ERR_FFMPEG_NOT_FOUND'
  | 'ERR_FFMPEG_EXITED'
  | 'ERR_FFMPEG_CLOSED'
  | 'ERR_FFMPEG_BUSY'
  | 'ERR_FRAME_SHAPE'
  | 'ERR_ANNEXB'
  | 'ERR_NOT_KEYFRAME'
  | 'ERR_STREAM_MISMATCH'
  | 'ERR_DECODE'
  | 'ERR_RECORDER'
  | 'ERR_FFPROBE';

export class FfmpegAdapterError extends Error {
  readonly code: FfmpegAdapterErrorCode;

  constructor(code: FfmpegAdapterErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The ffmpeg (or ffprobe) program could not be started: not installed, or not at the given path. */
export class FfmpegNotFoundError extends FfmpegAdapterError {
  constructor(program: string, cause?: unknown) {
    super(
      'ERR_FFMPEG_NOT_FOUND',
      `cannot run ${program}: not found or not executable (install the Debian package ffmpeg, or set CAMSTREAM_FFMPEG / CAMSTREAM_FFPROBE to the programs)`,
      { cause },
    );
  }
}

/** The child process ended (crashed, was killed, or refused its arguments) while work was pending. */
export class FfmpegExitedError extends FfmpegAdapterError {
  constructor(message: string) {
    super('ERR_FFMPEG_EXITED', message);
  }
}

/** The encoder, decoder or recorder was closed: no more work is taken. */
export class FfmpegClosedError extends FfmpegAdapterError {
  constructor(what: string) {
    super('ERR_FFMPEG_CLOSED', `${what} is closed`);
  }
}

/** More work was handed over than the process may have pending: the caller should drop this frame. */
export class FfmpegBusyError extends FfmpegAdapterError {
  constructor(message: string) {
    super('ERR_FFMPEG_BUSY', message);
  }
}

/** An image whose size or channels differ from what the encoder was opened for. */
export class FrameShapeError extends FfmpegAdapterError {
  constructor(message: string) {
    super('ERR_FRAME_SHAPE', message);
  }
}

/** Bytes that are not a well-formed H.264 Annex B access unit (or exceed the limits). */
export class AnnexBError extends FfmpegAdapterError {
  constructor(message: string) {
    super('ERR_ANNEXB', message);
  }
}

/** Decoding (or recording) must start at a keyframe; this access unit is not one. */
export class NotKeyframeError extends FfmpegAdapterError {
  constructor(message: string) {
    super('ERR_NOT_KEYFRAME', message);
  }
}

/** An access unit announces another picture size than the stream's. */
export class StreamMismatchError extends FfmpegAdapterError {
  constructor(message: string) {
    super('ERR_STREAM_MISMATCH', message);
  }
}

/** The decoder made no picture of this access unit; the stream goes on (it recovers at the next keyframe). */
export class DecodeError extends FfmpegAdapterError {
  /** What the decoder said about this access unit (at most a few lines). */
  readonly decoderMessages: readonly string[];

  constructor(message: string, decoderMessages: readonly string[]) {
    super('ERR_DECODE', message);
    this.decoderMessages = decoderMessages;
  }
}

export class Mp4RecorderError extends FfmpegAdapterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_RECORDER', message, options);
  }
}

export class FfprobeError extends FfmpegAdapterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_FFPROBE', message, options);
  }
}
