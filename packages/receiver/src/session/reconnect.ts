import { isCorruptBytes, isFinal, RefusedError } from './errors';
import type { SessionEnd } from './connection';

export interface ReconnectOptions {
  /** false: the first connection that ends ends the run. */
  reconnect: boolean;
  /** Backoff between attempts, doubling from min to max (default 200 ms to 5 s), +-20 % jitter. */
  backoffMs?: { min: number; max: number };
  log: (line: string) => void;
  signal: AbortSignal;
  /** Called with every connection that failed because the sender's bytes were wrong. */
  onCorruptBytes?: (error: Error) => void;
}

/** How a run of connections ended. */
export type ConnectionsEnd = { kind: 'stopped' } | { kind: 'sender-finished' } | { kind: 'failed'; error: Error };

/**
 * Connects again and again: after a failure, a refusal or a bye, with exponential backoff and
 * jitter, until stopped; except after a refusal that retrying cannot fix (isFinal), or at once
 * without `reconnect`. `connect` runs one connection; `connected()` (which it calls once the
 * handshake is over) resets the backoff.
 */
export async function keepConnected(connect: (connected: () => void) => Promise<SessionEnd>, options: ReconnectOptions): Promise<ConnectionsEnd> {
  const { log, signal } = options;
  const backoff = options.backoffMs ?? { min: 200, max: 5000 };
  let delay = backoff.min;
  for (;;) {
    const end = await connect(() => (delay = backoff.min));
    if (end.kind === 'stopped') return { kind: 'stopped' };
    const error = errorOf(end);
    if (error && isCorruptBytes(error)) options.onCorruptBytes?.(error);
    if (end.kind === 'bye') log(`the sender said bye: ${end.reason}`);
    if (!options.reconnect || (error && isFinal(error))) {
      // The caller reports the error: logging it here too would say it twice.
      return error ? { kind: 'failed', error } : { kind: 'sender-finished' };
    }
    if (error) log(error.message);
    const wait = jitter(delay);
    log(`reconnecting in ${(wait / 1000).toFixed(1)} s`);
    if (!(await sleep(wait, signal))) return { kind: 'stopped' };
    delay = Math.min(backoff.max, delay * 2);
  }
}

function errorOf(end: Exclude<SessionEnd, { kind: 'stopped' }>): Error | undefined {
  if (end.kind === 'failed') return end.error;
  if (end.kind === 'refused') return new RefusedError(end.code, `the sender refused the connection: ${end.reason} (${end.code})`);
  return undefined;
}

/** +-20 %, so that receivers of a restarted sender do not all come back in the same instant. */
export function jitter(ms: number, random: () => number = Math.random): number {
  return Math.round(ms * (0.8 + 0.4 * random()));
}

/** Resolves true after ms, or false as soon as the signal aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
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
