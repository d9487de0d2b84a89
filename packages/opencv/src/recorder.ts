import { statSync, type Stats } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { FrameSink, RawImage } from '@camstream/media';
import { RecorderError } from './errors';
import { checkRawImage } from './images';
import { OpenCVNotAvailableError, openCVModulePaths } from './load-opencv';
import { frameHeader, RECORDER_CHILD_SOURCE, type RecorderChildArgs } from './recorder-child';

export interface RecorderOptions {
  fps: number;
  width: number;
  height: number;
  /** Four-character codec code; default MJPG, or mp4v for .mp4/.m4v/.mov. */
  fourcc?: string;
  /** Frames allowed to wait for the writer before new ones are dropped (default 8). */
  maxPendingFrames?: number;
}

const DEFAULT_MAX_PENDING_FRAMES = 8;

/** Opens a video file for writing. Errors name the path: missing directory, codec or container refused. */
export async function openRecorder(path: string, options: RecorderOptions): Promise<VideoRecorder> {
  const { fps, width, height } = options;
  if (!Number.isFinite(fps) || fps <= 0) throw new RangeError(`recording fps must be more than 0, got ${fps}`);
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`recording size must be positive whole numbers, got ${width}x${height}`);
  }
  const fourcc = options.fourcc ?? defaultFourcc(path);
  if (!/^[\x20-\x7e]{4}$/.test(fourcc)) throw new RangeError(`fourcc must be 4 printable characters, got "${fourcc}"`);
  const directory = dirname(resolve(path));
  if (!statOrUndefined(directory)?.isDirectory()) {
    throw new RecorderError(`cannot record to ${path}: the directory ${directory} does not exist`);
  }
  let modules: ReturnType<typeof openCVModulePaths>;
  try {
    modules = openCVModulePaths();
  } catch (err) {
    throw new OpenCVNotAvailableError(err);
  }
  const before = statOrUndefined(path);
  const settings = { fps, width, height, fourcc, maxPendingFrames: options.maxPendingFrames ?? DEFAULT_MAX_PENDING_FRAMES };
  const args: RecorderChildArgs = [modules.binding, resolve(path), fourcc, fps, width, height];
  // The child needs none of our preloads (ts-node and the like): just Node and the addon.
  const env = { ...process.env };
  delete env['NODE_OPTIONS'];
  const child = spawn(process.execPath, ['-e', RECORDER_CHILD_SOURCE, JSON.stringify(args)], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const recorder = new VideoRecorder(child, path, settings);
  const opened = await recorder.opened;
  if (opened.kind === 'error') {
    recorder.kill();
    if (opened.stage === 'load') throw new OpenCVNotAvailableError(new Error(opened.message));
    throw new RecorderError(`cannot record to ${path}: ${opened.message}`);
  }
  // A failed open does not throw and this binding has no isOpened(). A writer that opened has
  // created (or truncated) the file, so that is what we check.
  const after = statOrUndefined(path);
  if (!after || (before && after.mtimeMs === before.mtimeMs && after.size === before.size && after.ino === before.ino)) {
    recorder.kill();
    throw new RecorderError(`cannot record to ${path}: OpenCV could not open it for writing with codec ${fourcc} (unwritable, or codec and container do not fit)`);
  }
  return recorder;
}

type ChildEvent = { kind: 'opened' | 'written' | 'closed' } | { kind: 'error'; stage: string; message: string };
type EventHandler = (event: ChildEvent) => void;

/** How long close() waits for the child to finish the file before killing it. */
const CLOSE_TIMEOUT_MS = 15_000;

/**
 * A FrameSink that appends frames to a video file. The cv.VideoWriter runs in a child process
 * (see recorder-child.ts for why), so recording never blocks the event loop: the main thread
 * only hands each frame to a pipe. Frames are written in order; frames of another size are
 * scaled to the recording's size (a video file has one frame size); only 3-channel BGR frames
 * are accepted. When more than `maxPendingFrames` wait, new ones are dropped and counted in
 * `droppedFrames`. close() waits for pending frames, then the file is finished and the child
 * exits. The caller must not change `image.data` until its write() has resolved (the pipe
 * reads the bytes in place, without a copy).
 */
export class VideoRecorder implements FrameSink {
  /** The child's first event: 'opened', or an error. */
  readonly opened: Promise<ChildEvent>;
  private readonly handlers: EventHandler[] = [];
  private readonly exited: Promise<void>;
  private stderrTail = '';
  private pendingFrames = 0;
  private written = 0;
  private dropped = 0;
  private closing: Promise<void> | undefined;
  private failure: Error | undefined;

  constructor(
    private readonly child: ChildProcess,
    readonly path: string,
    readonly settings: Required<RecorderOptions>,
  ) {
    this.opened = new Promise((resolveOpened) => this.expect(resolveOpened));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      this.handlers.shift()?.(parseEvent(line));
      this.refWhileBusy();
    });
    // OpenCV and FFmpeg chatter goes here; keep the end of it for error messages, print none of it.
    child.stderr!.on('data', (chunk: Buffer) => (this.stderrTail = (this.stderrTail + chunk.toString()).slice(-2000)));
    child.stdin!.on('error', () => undefined); // EPIPE when the child died: reported through 'exit'
    this.exited = new Promise((resolveExited) => {
      // 'close', not 'exit': it comes after stdout ended, so every event line has been read.
      child.once('close', (code, signal) => {
        const detail = this.stderrTail.trim().split('\n').slice(-3).join(' | ');
        const message = `the recording process exited (${signal ?? `code ${code}`})${detail ? `: ${detail}` : ''}`;
        for (const handler of this.handlers.splice(0)) handler({ kind: 'error', stage: 'exit', message });
        if (!this.closing) this.failure ??= new RecorderError(`recording ${path} stopped: ${message}`);
        resolveExited();
      });
    });
  }

  get writtenFrames(): number {
    return this.written;
  }

  get droppedFrames(): number {
    return this.dropped;
  }

  /** Resolves once this frame is in the file (or was dropped); rejects if writing failed. */
  write(image: RawImage): Promise<void> {
    if (this.closing) return Promise.reject(new RecorderError(`recording ${this.path} is closed`));
    if (this.failure) return Promise.reject(this.failure);
    try {
      checkRawImage(image, `recording ${this.path}`);
    } catch (err) {
      return Promise.reject(err);
    }
    if (image.channels !== 3) {
      return Promise.reject(new RecorderError(`recording ${this.path} takes 3-channel BGR frames, got ${image.channels} channels`));
    }
    if (this.pendingFrames >= this.settings.maxPendingFrames) {
      this.dropped++;
      return Promise.resolve();
    }
    this.pendingFrames++;
    const written = new Promise<void>((resolveWritten, rejectWritten) => {
      this.expect((event) => {
        this.pendingFrames--;
        if (event.kind === 'written') {
          this.written++;
          return resolveWritten();
        }
        const message = event.kind === 'error' ? event.message : `unexpected event ${event.kind}`;
        this.failure ??= new RecorderError(`writing to ${this.path} failed: ${message}`);
        rejectWritten(this.failure);
      });
    });
    // Header and pixels as two writes: never concatenated, the pixels are not copied.
    this.child.stdin!.cork();
    this.child.stdin!.write(frameHeader(image.width, image.height, image.data.length));
    this.child.stdin!.write(image.data);
    this.child.stdin!.uncork();
    return written;
  }

  /** Finishes the file: waits for pending frames, then for the child to release the writer and exit. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.child.exitCode === null && this.child.signalCode === null) {
        this.child.stdin!.end();
        const timer = setTimeout(() => this.kill(), CLOSE_TIMEOUT_MS);
        await this.exited;
        clearTimeout(timer);
      }
    })();
    return this.closing;
  }

  /** Stops the child at once (the file may be incomplete). */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  private expect(handler: EventHandler): void {
    this.handlers.push(handler);
    this.refWhileBusy();
  }

  /**
   * The child keeps this process alive only while an event is awaited. An idle recorder must
   * not: if the program ends without close(), the child sees its stdin close and finishes the file.
   */
  private refWhileBusy(): void {
    const busy = this.handlers.length > 0;
    for (const handle of [this.child, this.child.stdin, this.child.stdout, this.child.stderr] as Array<{ ref(): void; unref(): void } | null>) {
      if (busy) handle?.ref();
      else handle?.unref();
    }
  }
}

function parseEvent(line: string): ChildEvent {
  const match = /^error (\S+) (.*)$/.exec(line);
  if (match) {
    let message = match[2]!;
    try {
      message = String(JSON.parse(message));
    } catch {
      // not JSON: keep the raw text
    }
    return { kind: 'error', stage: match[1]!, message };
  }
  if (line === 'opened' || line === 'written' || line === 'closed') return { kind: line };
  return { kind: 'error', stage: 'protocol', message: `unexpected output from the recording process: ${line.slice(0, 200)}` };
}

function defaultFourcc(path: string): string {
  return ['.mp4', '.m4v', '.mov'].includes(extname(path).toLowerCase()) ? 'mp4v' : 'MJPG';
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}
