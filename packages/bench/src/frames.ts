import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import * as path from 'node:path';
import type { CapturedFrame, FrameSource, RawImage, SourceInfo } from '@camstream/media';

/** Frames per synthetic clip: what synth.py writes and every program in the bench cycles. */
export const CLIP_FRAMES = 30;

/** Where the tutorial's Python pair and synth.py live: ../shared next to the workspace. */
export function sharedDir(workspaceRoot: string): string {
  return process.env['CAMSTREAM_SHARED'] ?? path.resolve(workspaceRoot, '../shared');
}

/** The raw BGR clip file synth.py writes for one size: all frames back to back. */
export function clipPath(framesDir: string, width: number, height: number): string {
  return path.join(framesDir, `${width}x${height}.bgr`);
}

/**
 * Writes the synthetic clip for width x height with synth.py (deterministic: the same bytes on
 * every run), unless a complete one is already there. Returns the clip file.
 */
export function ensureClip(options: { python: string; shared: string; framesDir: string; width: number; height: number }): string {
  const { python, shared, framesDir, width, height } = options;
  const file = clipPath(framesDir, width, height);
  const expected = width * height * 3 * CLIP_FRAMES;
  if (existsSync(file) && statSync(file).size === expected) return file;
  execFileSync(python, [path.join(shared, 'peers', 'synth.py'), framesDir, String(width), String(height), String(CLIP_FRAMES)], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  // synth.py also writes one file per frame; only the clip is used.
  rmSync(path.join(framesDir, `${width}x${height}`), { recursive: true, force: true });
  if (!existsSync(file) || statSync(file).size !== expected) {
    throw new Error(`${file}: synth.py did not write ${CLIP_FRAMES} frames of ${width}x${height} BGR (${expected} bytes)`);
  }
  return file;
}

/** Reads a clip into one Buffer and returns a view per frame (no copies). */
export function loadClip(file: string, width: number, height: number): RawImage[] {
  const bytes = readFileSync(file);
  const frameBytes = width * height * 3;
  if (bytes.length === 0 || bytes.length % frameBytes !== 0) {
    throw new Error(`${file}: ${bytes.length} bytes is not a whole number of ${width}x${height} BGR frames`);
  }
  const frames: RawImage[] = [];
  for (let offset = 0; offset < bytes.length; offset += frameBytes) {
    frames.push({ width, height, channels: 3, data: bytes.subarray(offset, offset + frameBytes) });
  }
  return frames;
}

/**
 * A live source that cycles pre-loaded frames, paced at `fps` (0 = as fast as it is read).
 * By default read() hands out the loaded frames themselves: they never change, so a frame still
 * queued on a socket stays valid, and the bench measures streaming, not capturing. With
 * `captureCopy`, each read() copies the frame into a new Buffer, as the OpenCV capture source
 * does with every grabbed Mat (imageFromMat), to include that cost. Pacing is a camera's: frame
 * k is due at start + k / fps; a reader more than a frame late restarts the schedule (the frames
 * nobody took are skipped, not delivered in a burst).
 */
export class ClipSource implements FrameSource {
  readonly info: SourceInfo;
  private next = 0;
  private dueMs: number | undefined;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly frames: readonly RawImage[],
    fps: number,
    private readonly captureCopy = false,
  ) {
    const first = frames[0];
    if (!first) throw new Error('a clip needs at least one frame');
    this.info = { description: `synthetic clip ${first.width}x${first.height}`, width: first.width, height: first.height, fps, live: true };
  }

  async read(): Promise<CapturedFrame | null> {
    if (this.closed) return null;
    await this.waitUntilDue();
    if (this.closed) return null;
    const frame = this.frames[this.next++ % this.frames.length]!;
    let image = frame;
    if (this.captureCopy) {
      const data = Buffer.allocUnsafe(frame.data.length);
      frame.data.copy(data);
      image = { ...frame, data };
    }
    return { image, captureTimeMs: performance.timeOrigin + performance.now() };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.wake?.();
  }

  private waitUntilDue(): Promise<void> {
    const { fps } = this.info;
    // Always yield to the event loop: a fast loop must never starve sockets and timers.
    if (fps <= 0) return new Promise((resolve) => setImmediate(resolve));
    const interval = 1000 / fps;
    const now = performance.now();
    if (this.dueMs === undefined || now - this.dueMs > interval) this.dueMs = now;
    const wait = this.dueMs - now;
    this.dueMs += interval;
    if (wait <= 0) return new Promise((resolve) => setImmediate(resolve));
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, wait);
    });
  }
}
