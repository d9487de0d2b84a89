import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { CapturedFrame, FrameSink, FrameSource } from '@camstream/media';
import type { Broadcast, BroadcastResult } from './broadcast';

export interface PumpOptions {
  source: FrameSource;
  /** Encodes each captured frame once per rung in use and hands it to the viewers. */
  broadcast: Pick<Broadcast, 'publish' | 'size' | 'nextViewer' | 'whenViewerJoins'>;
  /** Optional local preview of what is captured. */
  preview?: FrameSink;
  /** Called after each published frame (encode time, the frames of each rung), for stats. */
  onPublished?: (result: BroadcastResult) => void;
  signal?: AbortSignal;
}

export type PumpResult = 'source-ended' | 'stopped';

/**
 * Capture -> publish (encode each rung in use once, offer it to every viewer). The next capture
 * runs while the current frame is being encoded on the thread pool, so a paced source and the
 * encoder overlap instead of adding up.
 *
 * Nothing is encoded while nobody watches: frames are still captured (the source stays live, the
 * preview shows them), but not numbered. `seq` counts from 0 at the first frame published after
 * the first viewer joined (PROTOCOL.md 4.2), and goes on when viewers come and go.
 *
 * A source without a pace of its own (fps 0: as fast as it can be read) goes as fast as the
 * fastest viewer takes frames: a frame is published once the previous one has been written to
 * some viewer (`taken`), or a new viewer joined, so the pump never encodes frames only for every
 * viewer to drop them. Paced sources (cameras) are read and published on time, always.
 *
 * Captured pixels go back to the source (`recycle`) for a later capture once nothing reads them:
 * after every encode (an H.264 encoder that is starting may take longer than publish()) and the
 * preview; for raw frames, whose payload is the captured image itself, and for image outlets (the
 * tutorial wire), only once every viewer has written it or dropped it as well (`imageReleased`).
 *
 * The loop yields to the event loop once per frame, whatever the source: a source with no pace
 * of its own and a raw "encode" both resolve at once, and a loop of promises that resolve at once
 * never lets signals, new connections, socket writes or timers run.
 */
export async function pumpFrames(options: PumpOptions): Promise<PumpResult> {
  const { source, broadcast, signal } = options;
  const paceToViewers = source.info.fps === 0;
  let seq = 0;
  let previousTaken: Promise<void> | undefined;
  /** Gives a frame's pixels back to the source once every reader of them is done. */
  const recycleAfter = ({ image }: CapturedFrame, ...readers: Array<void | Promise<void> | undefined>) => {
    if (!source.recycle) return;
    const recycle = () => source.recycle!(image);
    const pending = readers.filter((r): r is Promise<void> => r instanceof Promise);
    if (pending.length === 0) recycle();
    else void Promise.allSettled(pending).then(recycle);
  };
  let frame = await source.read();
  while (frame) {
    await yieldToEventLoop();
    if (signal?.aborted) return 'stopped';
    if (broadcast.size === 0) {
      recycleAfter(frame, options.preview?.write(frame.image));
      // Read flat out, for nobody: a source without a pace waits for a viewer instead (unless previewed).
      if (paceToViewers && !options.preview) await untilDone(broadcast.nextViewer(true), signal);
      if (signal?.aborted) return 'stopped';
      previousTaken = undefined;
      frame = await source.read();
      continue;
    }
    // Unpaced: publish only once the previous frame went out, so it is never replaced unsent;
    // a viewer that joins meanwhile gets this frame at once, whatever the others do.
    if (paceToViewers && previousTaken) await takenOrJoined(previousTaken, broadcast, signal);
    if (signal?.aborted) return 'stopped';
    const current = frame;
    const published = broadcast.publish(current.image, seq++, current.captureTimeMs);
    const next = source.read();
    // Whichever fails first must not leave the other's rejection unhandled.
    next.catch(() => undefined);
    const previewed = options.preview?.write(current.image);
    const result = await published;
    options.onPublished?.(result);
    previousTaken = result.taken;
    recycleAfter(current, previewed, result.imageReleased);
    frame = await next;
  }
  return signal?.aborted ? 'stopped' : 'source-ended';
}

/** `done`, or the abort, whichever comes first. */
function untilDone(done: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return done;
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const onAbort = () => resolve();
    signal.addEventListener('abort', onAbort, { once: true });
    void done.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}

/**
 * Until the previous frame was taken, a viewer joined, or the abort. Every wait cleans up after
 * itself: a pump waiting on frames for hours leaves no listener behind.
 */
function takenOrJoined(taken: Promise<void>, broadcast: Pick<Broadcast, 'whenViewerJoins'>, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      cancelJoin();
      signal?.removeEventListener('abort', finish);
      resolve();
    };
    const cancelJoin = broadcast.whenViewerJoins(finish);
    signal?.addEventListener('abort', finish, { once: true });
    void taken.then(finish);
  });
}
