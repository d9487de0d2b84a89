import { availableParallelism } from 'node:os';
import { BufferPool, type FrameCodec, type FrameSink, type RawImage } from '@camstream/media';
import type { FrameHeader, StreamDescription } from '@camstream/protocol';
import { ReceiverStats } from './stats';
import { DecodePipeline } from './decode-pipeline';
import { AuthError, NotASenderError, runSession, StreamTooLargeError, type SessionEnd, type SessionOptions } from './session';

/** Refusals that retrying cannot fix. */
const FINAL_REFUSALS = new Set(['ERR_AUTH', 'ERR_VERSION']);

export interface ReceiverOptions {
  host: string;
  port: number;
  name: string;
  codec: FrameCodec;
  /** Opens the sinks (window, recorder) once the stream's size is known. */
  openSinks: (stream: StreamDescription) => Promise<FrameSink[]>;
  /** Sinks that live for the whole run, across reconnects (the browser viewer). */
  lastingSinks?: FrameSink[];
  /** Sees every checked frame before decoding, e.g. to forward JPEG payloads untouched. */
  onFrame?: (header: FrameHeader, payload: Buffer) => void;
  /** Frames decoded at once when they arrive faster than one decode takes (default: cores, at most 4). */
  decodeConcurrency?: number;
  /** Stop after this many frames were received and checked. */
  maxFrames?: number;
  reconnect: boolean;
  /** Shared secret and TLS trust, passed to every connection. */
  security?: Pick<SessionOptions, 'secret' | 'tls'>;
  /** How long to wait for the sender's hello, and for any byte once streaming (defaults: 5 s, 10 s). */
  timeouts?: Pick<SessionOptions, 'handshakeTimeoutMs' | 'idleTimeoutMs'>;
  /** The largest stream to accept (default 7680x4320): a sender announcing more is refused in the handshake. */
  maxStreamSize?: SessionOptions['maxStreamSize'];
  /** Backoff between attempts, doubling from min to max. */
  backoffMs?: { min: number; max: number };
  stats: ReceiverStats;
  log: (line: string) => void;
  /** Stops the run; aborted with an Error (e.g. a recorder that broke), the run fails with that error. */
  signal: AbortSignal;
}

export type ReceiverResult =
  | { outcome: 'frames-reached' | 'stopped' | 'sender-finished' }
  | { outcome: 'failed'; error: Error };

interface ReceivedFrame {
  header: FrameHeader;
  payload: Buffer;
}

interface DecodedFrame {
  image: RawImage;
  /** The pixels are in a buffer of the pool, to be handed back when every sink is done. */
  pooled: boolean;
}

/**
 * Connects, checks and decodes frames, feeds the sinks; reconnects with exponential backoff when
 * the sender is not there yet or goes away. Decoding is latest-wins, on several threads when
 * frames come faster than one decode takes; frames are shown in order, and a slow display or
 * recorder skips frames instead of queueing them. Sinks get each image at once (in parallel),
 * and decoded pixels are reused once every sink is done with them.
 */
export async function receive(options: ReceiverOptions): Promise<ReceiverResult> {
  const { stats, log, signal } = options;
  const backoff = options.backoffMs ?? { min: 200, max: 5000 };
  const { sequence } = stats;
  const lastingSinks = options.lastingSinks ?? [];
  let sinks: FrameSink[] = [];
  let openedFor: string | undefined;
  let sinkReady: Promise<void> = Promise.resolve();
  let sinkError: Error | undefined;
  let received = 0;
  let delay = backoff.min;
  /** A sender here answered in plain camstream before: a later close before its hello is no TLS mismatch. */
  let spokePlainCamstream = false;
  const done = new AbortController();
  const stopBoth = AbortSignal.any([signal, done.signal]);
  /** The error the caller stopped the run with, if any: it reports it, so it is not logged here. */
  const stoppedWith = (): Error | undefined =>
    signal.aborted && signal.reason instanceof Error && signal.reason.name !== 'AbortError' ? signal.reason : undefined;
  const stoppedOutcome = (): ReceiverResult => {
    const error = stoppedWith();
    if (error) return { outcome: 'failed', error };
    return { outcome: done.signal.aborted ? 'frames-reached' : 'stopped' };
  };

  const concurrency = options.decodeConcurrency ?? Math.min(4, availableParallelism());
  // Enough for every decode in flight, the frame being shown and the one waiting to be shown.
  const pixels = new BufferPool(concurrency + 2);
  const sinksKeepImages = () => sinks.some((s) => s.keepsImages) || lastingSinks.some((s) => s.keepsImages);

  const decodeAndShow = new DecodePipeline<ReceivedFrame, DecodedFrame>(
    {
      decode: async ({ header, payload }) => {
        // A buffer is taken only once the codec has checked the payload's own header, and one
        // that a failed decode wrote into is not given back: the pool keeps memory for frames
        // that decode, never for a stream whose frames all fail (e.g. small JPEGs claiming 8K).
        let into: Buffer | undefined;
        const image = await options.codec.decode(payload, header.encoding, header, () => (into = pixels.take(header.width * header.height * header.channels)));
        if (into && image.data !== into) pixels.give(into); // raw frames wrap their payload
        return { image, pooled: into !== undefined && image.data === into };
      },
      accepted: ({ header }) => stats.frameDecoded(wallClockMs() - header.captureTime),
      skipped: () => stats.skipped++,
      show: async ({ image }, { header }) => {
        const meta = { seq: header.seq, captureTime: header.captureTime };
        // Wait for a recorder that is still opening: meanwhile newer frames are skipped and
        // counted, never decoded into no sink at all.
        await sinkReady;
        const writes = await Promise.allSettled([...sinks, ...lastingSinks].map((sink) => sink.write(image, meta)));
        const failed = writes.find((w): w is PromiseRejectedResult => w.status === 'rejected');
        if (failed) throw failed.reason;
        stats.frameShown();
      },
      release: ({ image, pooled }) => {
        if (pooled && !sinksKeepImages()) pixels.give(image.data);
      },
      onError: (err, stage) => {
        if (stage === 'decode') {
          stats.corrupt++;
          log(`could not decode a frame: ${(err as Error).message}`);
        } else if (err !== stoppedWith()) {
          log(`could not show or record a frame: ${(err as Error).message}`);
        }
      },
    },
    concurrency,
  );

  try {
    for (;;) {
      sequence.reset();
      const end: SessionEnd = await runSession(
        {
          host: options.host,
          port: options.port,
          name: options.name,
          signal: stopBoth,
          ...options.security,
          ...options.timeouts,
          ...(options.maxStreamSize ? { maxStreamSize: options.maxStreamSize } : {}),
          spokePlainCamstream,
        },
        {
          onStream: (stream) => {
            log(`connected to ${options.host}:${options.port}: ${stream.source ?? 'stream'} ${stream.width}x${stream.height} ${stream.encoding} @ ${stream.fps} fps`);
            delay = backoff.min;
            if (!options.security?.tls) spokePlainCamstream = true;
            const key = `${stream.width}x${stream.height}`;
            if (openedFor !== key) {
              // Sinks follow the stream's size; a restarted sender with a new size gets new ones.
              void closeAll(sinks);
              sinks = [];
              openedFor = key;
              sinkReady = options.openSinks(stream).then(
                (opened) => {
                  sinks = opened;
                },
                (err: Error) => {
                  sinkError = err;
                  done.abort();
                },
              );
            }
          },
          onFrame: (header, payload) => {
            sequence.accept(header);
            stats.frameReceived(payload.length);
            options.onFrame?.(header, payload);
            received++;
            decodeAndShow.offer({ header, payload });
            if (options.maxFrames !== undefined && received >= options.maxFrames) done.abort();
          },
        },
      );
      if (end.kind === 'stopped') {
        await decodeAndShow.idle();
        if (sinkError) return { outcome: 'failed', error: sinkError };
        return stoppedOutcome();
      }
      if (end.kind === 'failed' && isCorruptBytes(end.error)) stats.corrupt++;
      const error = end.kind === 'failed' ? end.error : end.kind === 'refused' ? new RefusedError(end.code, `the sender refused the connection: ${end.reason} (${end.code})`) : undefined;
      const final =
        (end.kind === 'failed' && (end.error instanceof AuthError || end.error instanceof StreamTooLargeError)) || (end.kind === 'refused' && FINAL_REFUSALS.has(end.code));
      if (end.kind === 'bye') log(`the sender said bye: ${end.reason}`);
      if (!options.reconnect || final) {
        if (end.kind === 'bye') return { outcome: 'sender-finished' };
        // The caller reports it: logging it here too would say it twice.
        return { outcome: 'failed', error: error! };
      }
      if (error) log(error.message);
      const wait = jitter(delay);
      log(`reconnecting in ${(wait / 1000).toFixed(1)} s`);
      if (!(await sleep(wait, stopBoth))) return stoppedOutcome();
      delay = Math.min(backoff.max, delay * 2);
    }
  } finally {
    await sinkReady;
    await decodeAndShow.idle();
    await closeAll(sinks);
  }
}

/** The sender's refusal (its `error` message), with its code. */
class RefusedError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Errors with a protocol-level code mean the bytes were wrong, not that the network failed;
 * except a failed authentication, a stream larger than allowed, and a peer that is no sender at all.
 */
function isCorruptBytes(error: Error): boolean {
  if (error instanceof AuthError || error instanceof StreamTooLargeError || error instanceof NotASenderError) return false;
  return /^ERR_/.test((error as { code?: unknown }).code as string);
}

/** +-20 %, so that receivers of a restarted sender do not all come back in the same instant. */
function jitter(ms: number): number {
  return Math.round(ms * (0.8 + 0.4 * Math.random()));
}

function closeAll(sinks: FrameSink[]): Promise<unknown> {
  return Promise.allSettled(sinks.map((s) => s.close()));
}

function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Resolves true after ms, or false as soon as the signal aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
