import { existsSync, statSync } from 'node:fs';
import { BufferPool, type CapturedFrame, type FrameSource, type RawImage, type SourceInfo } from '@camstream/media';
import type { Mat, VideoCapture } from '@u4/opencv4nodejs';
import { describeThrown, SourceNotFoundError, SourceOpenError } from './errors';
import { imageFromMat, resizeMat } from './images';
import { loadOpenCV } from './load-opencv';
import { FramePacer, wallClockMs } from './pacing';

export interface SourceOptions {
  /** Frames are scaled to this width (keeping the aspect ratio when only one side is given). */
  width?: number;
  height?: number;
  /** Test pattern and files: the pace, 0 = as fast as possible. Cameras: the rate asked of the device. */
  fps?: number;
  /** Files only: start again at the end instead of ending. */
  loop?: boolean;
}

/** Files whose container reports no usable rate play at this many fps. */
const FALLBACK_FILE_FPS = 30;

interface CaptureSourceSetup {
  capture: VideoCapture;
  info: SourceInfo;
  /** The first frame, read while opening to learn the real size; returned by the first read(). */
  firstFrame: Mat;
  /** Size the source delivers, before any resizing. */
  nativeWidth: number;
  nativeHeight: number;
  loop: boolean;
  /** Opens the source again, for files that cannot seek back to the start. */
  reopen?: () => VideoCapture;
}

/**
 * A camera, stream URL or video file read through cv.VideoCapture. Reads and resizes run on
 * OpenCV's worker threads (readAsync, resizeAsync), so capture never blocks the event loop;
 * only opening does (VideoCapture's constructor is synchronous). Reads are serialised: one
 * VideoCapture must not be read from two threads at once.
 */
export class CaptureSource implements FrameSource {
  readonly info: SourceInfo;
  private capture: VideoCapture;
  private pendingFrame: Mat | undefined;
  private readonly pacer: FramePacer;
  private readonly resize: boolean;
  private readonly loop: boolean;
  private readonly reopen: (() => VideoCapture) | undefined;
  private lastRead: Promise<unknown> = Promise.resolve();
  private closed = false;
  private ended = false;
  /** Frames handed back by the pump once encoded: a few are in flight at once. */
  private readonly buffers = new BufferPool(4);

  constructor(setup: CaptureSourceSetup) {
    this.capture = setup.capture;
    this.info = setup.info;
    this.pendingFrame = setup.firstFrame;
    // Live sources pace themselves (read() waits for the device or the network); files do not.
    this.pacer = new FramePacer(setup.info.live ? 0 : setup.info.fps);
    this.resize = setup.nativeWidth !== setup.info.width || setup.nativeHeight !== setup.info.height;
    this.loop = setup.loop;
    this.reopen = setup.reopen;
  }

  read(): Promise<CapturedFrame | null> {
    const next = this.lastRead.then(() => this.readNext());
    this.lastRead = next.catch(() => undefined);
    return next;
  }

  recycle(image: RawImage): void {
    this.buffers.give(image.data);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.lastRead;
    this.pendingFrame?.release();
    this.pendingFrame = undefined;
    this.capture.release();
  }

  private async readNext(): Promise<CapturedFrame | null> {
    if (this.closed || this.ended) return null;
    let mat = this.pendingFrame ?? (await this.capture.readAsync());
    this.pendingFrame = undefined;
    if (mat.empty && this.loop && !this.closed) mat = await this.rewind();
    if (mat.empty || this.closed) {
      mat.release();
      this.ended = true;
      return null;
    }
    let resized: Mat | undefined;
    let image: RawImage;
    try {
      if (this.resize) resized = await resizeMat(mat, this.info.width, this.info.height);
      const pixels = resized ?? mat;
      image = imageFromMat(pixels, this.buffers.take(pixels.rows * pixels.cols * pixels.channels));
    } finally {
      // Free the pixels now rather than in a GC finaliser, as the codec does after decoding: the
      // next read reuses the memory, and the addon's memory accounting never runs inside a GC.
      resized?.release();
      mat.release();
    }
    await this.pacer.wait();
    return { image, captureTimeMs: wallClockMs() };
  }

  /** Back to the first frame: seek if the container allows it, else open the file again. */
  private async rewind(): Promise<Mat> {
    const cv = loadOpenCV();
    this.capture.set(cv.CAP_PROP_POS_FRAMES, 0);
    const first = await this.capture.readAsync();
    if (!first.empty || !this.reopen) return first;
    this.capture.release();
    this.capture = this.reopen();
    return this.capture.readAsync();
  }
}

/** Camera by index: /dev/videoN through V4L2 on Linux. */
export async function openCamera(index: number, options: SourceOptions): Promise<CaptureSource> {
  const cv = loadOpenCV();
  const device = `/dev/video${index}`;
  const onLinux = process.platform === 'linux';
  if (onLinux && !existsSync(device)) throw new SourceNotFoundError(`camera ${index} not found (no ${device})`);
  let capture: VideoCapture;
  try {
    capture = new cv.VideoCapture(index, onLinux ? cv.CAP_V4L2 : cv.CAP_ANY);
  } catch (thrown) {
    throw new SourceOpenError(`camera ${index}${onLinux ? ` (${device})` : ''} could not be opened; is another program using it? (${describeThrown(thrown)})`, { cause: thrown });
  }
  // One buffered frame: a slow consumer then gets a fresh picture, not one from a queue.
  capture.set(cv.CAP_PROP_BUFFERSIZE, 1);
  if (options.width) capture.set(cv.CAP_PROP_FRAME_WIDTH, options.width);
  if (options.height) capture.set(cv.CAP_PROP_FRAME_HEIGHT, options.height);
  if (options.fps) capture.set(cv.CAP_PROP_FPS, options.fps);
  return openLive(capture, `camera ${index}`, options);
}

/** A network stream (rtsp://, http://, ...) through FFmpeg, falling back to GStreamer. */
export async function openUrl(url: string, options: SourceOptions): Promise<CaptureSource> {
  const shownUrl = redactUrl(url);
  return openLive(openWithBackends(url, `stream ${shownUrl}`), `stream ${shownUrl}`, options);
}

/** A camera or network stream once opened: live, never loops, at whatever rate it reports. */
async function openLive(capture: VideoCapture, description: string, options: SourceOptions): Promise<CaptureSource> {
  const cv = loadOpenCV();
  const firstFrame = await readFirstFrame(capture, description);
  return new CaptureSource({
    capture,
    firstFrame,
    nativeWidth: firstFrame.cols,
    nativeHeight: firstFrame.rows,
    loop: false,
    info: { description, ...outputSize(firstFrame, options), fps: usableFps(capture.get(cv.CAP_PROP_FPS)) ?? 0, live: true },
  });
}

/** A video file, played at its own rate (or options.fps), ending or looping at the end. */
export async function openFile(path: string, options: SourceOptions): Promise<CaptureSource> {
  const cv = loadOpenCV();
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile();
  } catch (err) {
    throw new SourceNotFoundError(`video file not found: ${path}`, { cause: err });
  }
  if (!isFile) throw new SourceOpenError(`not a video file: ${path} is a directory or device`);
  const what = `video file ${path}`;
  const capture = openWithBackends(path, what);
  const firstFrame = await readFirstFrame(capture, what);
  const fps = options.fps ?? usableFps(capture.get(cv.CAP_PROP_FPS)) ?? FALLBACK_FILE_FPS;
  return new CaptureSource({
    capture,
    firstFrame,
    nativeWidth: firstFrame.cols,
    nativeHeight: firstFrame.rows,
    loop: options.loop ?? false,
    reopen: () => openWithBackends(path, what),
    info: { description: `file ${path}`, ...outputSize(firstFrame, options), fps, live: false },
  });
}

/**
 * FFmpeg first (it reports frame counts and seeks reliably), then GStreamer. Never CAP_ANY:
 * it also tries the image-sequence backend, which misreads ordinary names and logs errors.
 */
function openWithBackends(target: string, what: string): VideoCapture {
  const cv = loadOpenCV();
  let lastThrown: unknown;
  for (const backend of [cv.CAP_FFMPEG, cv.CAP_GSTREAMER]) {
    try {
      return new cv.VideoCapture(target, backend);
    } catch (thrown) {
      lastThrown = thrown; // always "VideoCapture::New - failed to open capture": no detail to keep
    }
  }
  throw new SourceOpenError(`cannot open ${what}: OpenCV cannot decode it (tried FFmpeg and GStreamer)`, { cause: lastThrown });
}

async function readFirstFrame(capture: VideoCapture, what: string): Promise<Mat> {
  const frame = await capture.readAsync();
  if (frame.empty) {
    capture.release();
    throw new SourceOpenError(`cannot read from ${what}: it opened but delivered no frame`);
  }
  return frame;
}

/** Requested size, keeping the source's aspect ratio when only one side is asked for. */
function outputSize(frame: Mat, options: SourceOptions): { width: number; height: number } {
  const { width, height } = options;
  if (width && height) return { width, height };
  if (width) return { width, height: Math.max(1, Math.round((width * frame.rows) / frame.cols)) };
  if (height) return { width: Math.max(1, Math.round((height * frame.cols) / frame.rows)), height };
  return { width: frame.cols, height: frame.rows };
}

/** Containers and streams report 0, NaN or 90000 (a clock rate) when they do not know. */
function usableFps(reported: number): number | undefined {
  return Number.isFinite(reported) && reported > 0 && reported <= 1000 ? reported : undefined;
}

/** The description travels to every viewer: never let a password in a URL go with it. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (!parsed.password) return url;
    parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/([^:/@]+):[^@/]*@/, '//$1:***@');
  }
}
