import { statSync, type Stats } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { FrameSink, RawImage } from '@camstream/media';
import { RecorderError } from './errors';
import { checkRawImage } from './images';
import { OpenCVNotAvailableError, openCVModulePaths } from './load-opencv';
import { frameHeader, openLine, RECORDER_CHILD_SOURCE, type RecorderChildArgs } from './recorder-child';

export interface RecorderOptions {
  fps: number;
  width: number;
  height: number;
  /** Four-character codec code; default MJPG, or mp4v for .mp4/.m4v/.mov. */
  fourcc?: string;
  /**
   * Frames allowed to wait for the writer (default 8): before the file is open, that many are
   * copied and taken at once; after it, more waiting frames than that are dropped.
   */
  maxPendingFrames?: number;
}

const DEFAULT_MAX_PENDING_FRAMES = 8;

/**
 * A recording process started ahead of time: it loads OpenCV (1-2 s on this machine) while the
 * caller does not yet know what to record, e.g. before a stream's size is known. Hand it to
 * startRecorder, or discard() it.
 */
export class RecorderProcess {
  private spawned: SpawnedChild | undefined;

  private constructor(spawned: SpawnedChild) {
    this.spawned = spawned;
  }

  /** Starts the process. Throws OpenCVNotAvailableError when the addon cannot be found. */
  static start(): RecorderProcess {
    return new RecorderProcess(spawnRecorderChild());
  }

  /** The process, once; undefined after that or after discard(). */
  take(): SpawnedChild | undefined {
    const spawned = this.spawned;
    this.spawned = undefined;
    return spawned;
  }

  /** Ends an unused process: it exits without creating any file. */
  discard(): void {
    this.take()?.child.stdin!.end();
  }
}

interface SpawnedChild {
  child: ChildProcess;
  /** Resolves when the child has exited and its output ended (its 'close' event). */
  closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function spawnRecorderChild(): SpawnedChild {
  let modules: ReturnType<typeof openCVModulePaths>;
  try {
    modules = openCVModulePaths();
  } catch (err) {
    throw new OpenCVNotAvailableError(err);
  }
  const args: RecorderChildArgs = [modules.binding];
  // The child needs none of our preloads (ts-node and the like): just Node and the addon.
  const env = { ...process.env };
  delete env['NODE_OPTIONS'];
  const child = spawn(process.execPath, ['-e', RECORDER_CHILD_SOURCE, JSON.stringify(args)], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  child.stdin!.on('error', () => undefined); // EPIPE when the child died: reported through 'close'
  // Waiting for its orders, it must not keep this process alive.
  for (const handle of [child, child.stdin, child.stdout, child.stderr] as Array<{ unref(): void } | null>) handle?.unref();
  return { child, closed };
}

/**
 * Starts recording to a video file and returns at once: the recorder takes frames right away
 * (see VideoRecorder) while its process loads OpenCV and opens the file. `recorder.opened` says
 * whether that worked; errors name the path: missing directory (thrown here), codec or container
 * refused (from `opened`). Pass a RecorderProcess started earlier to skip most of the wait.
 */
export function startRecorder(path: string, options: RecorderOptions, prestarted?: RecorderProcess): VideoRecorder {
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
  const spawned = prestarted?.take() ?? spawnRecorderChild();
  const settings = { fps, width, height, fourcc, maxPendingFrames: options.maxPendingFrames ?? DEFAULT_MAX_PENDING_FRAMES };
  const before = statOrUndefined(path);
  spawned.child.stdin!.write(openLine([resolve(path), fourcc, fps, width, height]));
  return new VideoRecorder(spawned, path, settings, before);
}

/** Opens a video file for writing and resolves once it is open. Errors name the path: missing directory, codec or container refused. */
export async function openRecorder(path: string, options: RecorderOptions): Promise<VideoRecorder> {
  const recorder = startRecorder(path, options);
  await recorder.opened;
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
 * are accepted.
 *
 * Until the file is open, up to `maxPendingFrames` frames are copied and taken at once, so a
 * caller that waits for each write is not held up while the process starts; a frame beyond those
 * is written from the caller's buffer like any other. Otherwise write() resolves once the frame
 * is in the file: the caller must not change `image.data` until then (the pipe reads the bytes
 * in place, without a copy). When more than `maxPendingFrames` such frames wait, new ones are
 * dropped and counted in `droppedFrames`. close() waits for pending frames, then the file is
 * finished and the child exits.
 */
export class VideoRecorder implements FrameSink {
  /** Resolves once the file is open; rejects (and the recorder fails) if it cannot be. */
  readonly opened: Promise<void>;
  private readonly child: ChildProcess;
  private readonly handlers: EventHandler[] = [];
  private readonly exited: Promise<void>;
  private stderrTail = '';
  private isOpen = false;
  /** Frames copied before the file was open and not yet written. */
  private earlyFrames = 0;
  private pendingFrames = 0;
  private written = 0;
  private dropped = 0;
  private closing: Promise<void> | undefined;
  private failure: Error | undefined;

  constructor(
    spawned: SpawnedChild,
    readonly path: string,
    readonly settings: Required<RecorderOptions>,
    /** The file as it was before, to tell whether the writer really created it. */
    before: Stats | undefined,
  ) {
    const child = spawned.child;
    this.child = child;
    this.opened = new Promise<void>((resolveOpened, rejectOpened) =>
      this.expect((event) => {
        const failed = this.openFailure(event, before);
        if (!failed) {
          this.isOpen = true;
          return resolveOpened();
        }
        this.failure ??= failed;
        this.kill();
        rejectOpened(this.failure);
      }),
    );
    // Whoever uses the recorder may learn of a failed open from write() instead.
    this.opened.catch(() => undefined);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      this.handlers.shift()?.(parseEvent(line));
      this.refWhileBusy();
    });
    // OpenCV and FFmpeg chatter goes here; keep the end of it for error messages, print none of it.
    child.stderr!.on('data', (chunk: Buffer) => (this.stderrTail = (this.stderrTail + chunk.toString()).slice(-2000)));
    // After 'close', not 'exit': stdout has ended, so every event line has been read.
    this.exited = spawned.closed.then(({ code, signal }) => {
      const detail = this.stderrTail.trim().split('\n').slice(-3).join(' | ');
      const message = `the recording process exited (${signal ?? `code ${code}`})${detail ? `: ${detail}` : ''}`;
      for (const handler of this.handlers.splice(0)) handler({ kind: 'error', stage: 'exit', message });
      if (!this.closing) this.failure ??= new RecorderError(`recording ${path} stopped: ${message}`);
    });
  }

  get writtenFrames(): number {
    return this.written;
  }

  get droppedFrames(): number {
    return this.dropped;
  }

  /**
   * Resolves once this frame is in the file, was copied to wait for the file to open, or was
   * dropped; rejects if writing failed.
   */
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
    if (!this.isOpen && this.earlyFrames < this.settings.maxPendingFrames) {
      this.earlyFrames++;
      this.expect((event) => {
        this.earlyFrames--;
        this.settle(event);
      });
      this.send(image.width, image.height, Buffer.from(image.data));
      return Promise.resolve();
    }
    if (this.pendingFrames >= this.settings.maxPendingFrames) {
      this.dropped++;
      return Promise.resolve();
    }
    this.pendingFrames++;
    const written = new Promise<void>((resolveWritten, rejectWritten) => {
      this.expect((event) => {
        this.pendingFrames--;
        const failed = this.settle(event);
        if (failed) rejectWritten(failed);
        else resolveWritten();
      });
    });
    this.send(image.width, image.height, image.data);
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

  /** Header and pixels as two writes: never concatenated, the pixels are not copied. */
  private send(width: number, height: number, pixels: Buffer): void {
    this.child.stdin!.cork();
    this.child.stdin!.write(frameHeader(width, height, pixels.length));
    this.child.stdin!.write(pixels);
    this.child.stdin!.uncork();
  }

  /** Counts a frame's outcome; returns the recorder's failure if it was not written. */
  private settle(event: ChildEvent): Error | undefined {
    if (event.kind === 'written') {
      this.written++;
      return undefined;
    }
    const message = event.kind === 'error' ? event.message : `unexpected event ${event.kind}`;
    this.failure ??= new RecorderError(`writing to ${this.path} failed: ${message}`);
    return this.failure;
  }

  /** Why the child's first event means the file is not open, or undefined if it is. */
  private openFailure(event: ChildEvent, before: Stats | undefined): Error | undefined {
    if (event.kind === 'error') {
      if (event.stage === 'load') return new OpenCVNotAvailableError(new Error(event.message));
      return new RecorderError(`cannot record to ${this.path}: ${event.message}`);
    }
    if (event.kind !== 'opened') return new RecorderError(`cannot record to ${this.path}: unexpected event ${event.kind}`);
    // A failed open does not throw and this binding has no isOpened(). A writer that opened has
    // created (or truncated) the file, so that is what we check.
    const after = statOrUndefined(this.path);
    if (!after || (before && after.mtimeMs === before.mtimeMs && after.size === before.size && after.ino === before.ino)) {
      return new RecorderError(`cannot record to ${this.path}: OpenCV could not open it for writing with codec ${this.settings.fourcc} (unwritable, or codec and container do not fit)`);
    }
    return undefined;
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
