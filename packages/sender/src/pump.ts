import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { CapturedFrame, FrameSink, FrameSource } from '@camstream/media';
import type { Broadcast, BroadcastResult } from './broadcast';

export interface PumpOptions {
  source: FrameSource;
  /** Encodes each captured frame once per rung in use and hands it to the viewers. */
  broadcast: Pick<Broadcast, 'publish' | 'size' | 'nextViewer' | 'whenViewerJoins' | 'joinCount'>;
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
 * fastest viewer takes frames: a frame is offered once the previous one has been written to some
 * viewer (`taken`), or a viewer joined since, so it never replaces one unsent. It is encoded
 * meanwhile: the next frame's encode starts while the previous one is still encoded or waits, so
 * two encodes, the event loop and the sockets overlap; a third does not start before the first
 * of them went out, so the pump never encodes frames only for every viewer to drop them. Paced
 * sources (cameras) are read and published on time, always.
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
  /** Unpaced: the frame published last, whose publish() may still be under way. */
  let last: { published: Promise<BroadcastResult>; joins: number; offerAfter: Promise<void> | undefined } | undefined;
  /** Unpaced: the last frame's stats and recycling, done once its publish() resolved. */
  let lastFinished: Promise<void> | undefined;
  /** Gives a frame's pixels back to the source once every reader of them is done. */
  const recycleAfter = ({ image }: CapturedFrame, ...readers: Array<void | Promise<void> | undefined>) => {
    if (!source.recycle) return;
    const recycle = () => source.recycle!(image);
    const pending = readers.filter((r): r is Promise<void> => r instanceof Promise);
    if (pending.length === 0) recycle();
    else void Promise.allSettled(pending).then(recycle);
  };
  /** Unpaced: lets the last frame's publish() finish (its error, if any, is thrown here). */
  const settleLast = async () => {
    const finished = lastFinished;
    last = undefined;
    lastFinished = undefined;
    await finished;
  };
  let frame = await source.read();
  while (frame) {
    await yieldToEventLoop();
    if (signal?.aborted) break;
    if (broadcast.size === 0) {
      await settleLast();
      recycleAfter(frame, options.preview?.write(frame.image));
      // Read flat out, for nobody: a source without a pace waits for a viewer instead (unless previewed).
      if (paceToViewers && !options.preview) await untilDone(broadcast.nextViewer(true), signal);
      if (signal?.aborted) break;
      frame = await source.read();
      continue;
    }
    // Unpaced: not before the frame ahead of the last one went out, so at most two frames wait for the viewers.
    if (last?.offerAfter) await last.offerAfter;
    if (signal?.aborted) break;
    // Unpaced: offered once the last frame went out, so it is never replaced unsent (a viewer that
    // joined since the last frame was published takes it at once, whatever the others do).
    const previous = last;
    const offerAfter = previous
      ? previous.published.then(
          (result) => takenOrJoined(result.taken, previous.joins, broadcast, signal),
          () => undefined,
        )
      : undefined;
    const current = frame;
    const published = broadcast.publish(current.image, seq++, current.captureTimeMs, offerAfter);
    const joins = broadcast.joinCount;
    const next = source.read();
    // Whichever fails first must not leave the other's rejection unhandled.
    next.catch(() => undefined);
    const previewed = options.preview?.write(current.image);
    const finished = published.then((result) => {
      options.onPublished?.(result);
      recycleAfter(current, previewed, result.imageReleased);
    });
    if (paceToViewers) {
      // The next frame is encoded while this one still is, or waits for its turn to be offered.
      finished.catch(() => undefined);
      const before = lastFinished;
      last = { published, joins, offerAfter };
      lastFinished = finished;
      await before;
    } else {
      await finished;
    }
    frame = await next;
  }
  await settleLast();
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
 * Until the previous frame was taken, a viewer joined since it was published (`joinsThen` was the
 * count then), or the abort. Every wait cleans up after itself: a pump waiting on frames for
 * hours leaves no listener behind.
 */
function takenOrJoined(
  taken: Promise<void>,
  joinsThen: number,
  broadcast: Pick<Broadcast, 'whenViewerJoins' | 'joinCount'>,
  signal: AbortSignal | undefined,
): Promise<void> {
  if (signal?.aborted || broadcast.joinCount > joinsThen) return Promise.resolve();
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
