/**
 * The OpenCV adapter: the one package that loads `@u4/opencv4nodejs`. It implements the
 * contracts of `@camstream/media` (FrameSource, FrameCodec, Display, FrameSink). Importing it
 * is cheap: OpenCV loads on first use (loadOpenCV).
 */
export { loadOpenCV, OpenCVNotAvailableError } from './load-opencv';
export type { OpenCV } from './load-opencv';
export { openSource, parseSourceSpec } from './sources';
export type { SourceSpec } from './sources';
export type { SourceOptions } from './capture-source';
export { OpenCVCodec, DEFAULT_JPEG_QUALITY } from './codec';
export { hasDisplay, probeDisplay, openWindow, OpenCVWindow } from './display';
export type { DisplayStatus, WindowOptions, WindowCloseReason } from './display';
export { openRecorder, startRecorder, RecorderProcess, VideoRecorder } from './recorder';
export { drawMosaic } from './mosaic';
export type { TileDrawing, CanvasRect } from './mosaic';
export type { RecorderOptions } from './recorder';
export {
  OpenCVAdapterError,
  SourceNotFoundError,
  SourceOpenError,
  DecodeError,
  ShapeMismatchError,
  EncodeError,
  NoDisplayError,
  RecorderError,
} from './errors';
export type { OpenCVAdapterErrorCode } from './errors';
