/** Whether a camera sends: no frame yet, frames coming, or none for a few frame intervals. */
export type CameraState = 'waiting' | 'live' | 'stopped';

/** A camera is stopped after this many frame intervals without a frame... */
const STOPPED_AFTER_FRAME_INTERVALS = 5;
/** ...but never sooner than this (a fast camera's scheduling hiccup is no stop)... */
const MIN_STOPPED_AFTER_MS = 500;
/** ...and this long when its rate is unknown (fps 0). */
const STOPPED_AFTER_UNKNOWN_RATE_MS = 2000;

/**
 * Tells a camera that stopped from one that is merely between frames: stopped once nothing came
 * for 5 frame intervals of its announced rate (at least 500 ms; 2 s at an unknown rate), as the
 * NATS receiver's outage threshold (PROTOCOL.md 9.4). Pure bookkeeping: the caller gives the times.
 */
export class Liveness {
  private lastFrameAt: number | undefined;
  private stoppedAt: number | undefined;
  private fps = 0;

  /** The announced frame rate (0: unknown), which sets the threshold. */
  setFps(fps: number): void {
    this.fps = fps;
  }

  get thresholdMs(): number {
    return this.fps > 0 ? Math.max(MIN_STOPPED_AFTER_MS, (STOPPED_AFTER_FRAME_INTERVALS * 1000) / this.fps) : STOPPED_AFTER_UNKNOWN_RATE_MS;
  }

  get state(): CameraState {
    if (this.lastFrameAt === undefined) return 'waiting';
    return this.stoppedAt === undefined ? 'live' : 'stopped';
  }

  /** A frame arrived at `now`; returns how long the camera had been stopped, if it had. */
  frame(now: number): number | undefined {
    const stoppedFor = this.stoppedAt === undefined ? undefined : now - this.lastFrameAt!;
    this.lastFrameAt = now;
    this.stoppedAt = undefined;
    return stoppedFor;
  }

  /** Call now and then: true once, when the camera has just been found stopped. */
  check(now: number): boolean {
    if (this.lastFrameAt === undefined || this.stoppedAt !== undefined) return false;
    if (now - this.lastFrameAt <= this.thresholdMs) return false;
    this.stoppedAt = now;
    return true;
  }

  /** Milliseconds since the last frame, while stopped; null otherwise. */
  stoppedForMs(now: number): number | null {
    return this.stoppedAt === undefined ? null : now - this.lastFrameAt!;
  }
}
