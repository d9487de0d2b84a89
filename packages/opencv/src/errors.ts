/**
 * One class per way the OpenCV adapter can fail. Each has a stable `code` that callers and
 * tests branch on, and a message that names the thing involved (path, camera, sizes).
 */
export type OpenCVAdapterErrorCode =
  | 'ERR_SOURCE_NOT_FOUND'
  | 'ERR_SOURCE_OPEN'
  | 'ERR_DECODE'
  | 'ERR_SHAPE_MISMATCH'
  | 'ERR_ENCODE'
  | 'ERR_NO_DISPLAY'
  | 'ERR_RECORDER';

export class OpenCVAdapterError extends Error {
  readonly code: OpenCVAdapterErrorCode;

  constructor(code: OpenCVAdapterErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A camera index with no device, or a file path that does not exist. */
export class SourceNotFoundError extends OpenCVAdapterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SOURCE_NOT_FOUND', message, options);
  }
}

/** The source exists but OpenCV cannot open or decode it. */
export class SourceOpenError extends OpenCVAdapterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SOURCE_OPEN', message, options);
  }
}

/** A payload is not a decodable image of its encoding. */
export class DecodeError extends OpenCVAdapterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_DECODE', message, options);
  }
}

/** A decoded image's size or channel count differs from the shape the frame announced. */
export class ShapeMismatchError extends OpenCVAdapterError {
  constructor(message: string) {
    super('ERR_SHAPE_MISMATCH', message);
  }
}

/** OpenCV failed to encode an image. */
export class EncodeError extends OpenCVAdapterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_ENCODE', message, options);
  }
}

/** There is no X display to open a window on; OpenCV was not asked to (it would abort the process). */
export class NoDisplayError extends OpenCVAdapterError {
  constructor(message: string) {
    super('ERR_NO_DISPLAY', message);
  }
}

/** A recording cannot be opened or written. */
export class RecorderError extends OpenCVAdapterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_RECORDER', message, options);
  }
}

/** opencv4nodejs throws plain strings (e.g. "VideoCapture::New - failed to open capture"). */
export function describeThrown(thrown: unknown): string {
  return thrown instanceof Error ? thrown.message : String(thrown);
}
