import type { Encoding, FrameCodec, FrameSink, FrameSource } from '@camstream/media';
import type { StreamDescription } from '@camstream/protocol';
import { receive, type ReceiverResult, type ReceiverStats } from '@camstream/receiver';
import { Broadcast, pumpFrames, StreamServer, type BroadcastResult, type PumpResult } from '@camstream/sender';

export interface CallOptions {
  /** Where this side listens for the partner's receiver. */
  host: string;
  port: number;
  /** The partner's sender: the other side's call. */
  partner: { host: string; port: number };
  /** This side's camera (or test pattern). */
  source: FrameSource;
  codec: FrameCodec;
  encoding: Encoding;
  /** JPEG quality (default 80). */
  quality?: number;
  /** Per-receiver quality rungs for JPEG (default true). */
  adapt?: boolean;
  /** This side's name: in its sender's hello and its receiver's. */
  name: string;
  /** Shared secret, both directions: the partner proves it to watch, and proves it when watched. */
  secret?: string;
  /** This side streams over TLS with this certificate and key (PEM). */
  tls?: { cert: Buffer; key: Buffer };
  /** The partner streams over TLS: trust this CA, or exactly this certificate fingerprint. */
  partnerTls?: { ca?: Buffer; fingerprint256?: string };
  /** The largest partner stream to accept (default 7680x4320). */
  maxStreamSize?: { width: number; height: number };
  /** Opens where the partner's frames go, for each of its streams (the call window, or nothing). */
  openPartnerSinks: (stream: StreamDescription) => Promise<FrameSink[]>;
  /** Where this side's own captured frames go (the window's inset). */
  preview?: FrameSink;
  /** The incoming direction's figures. */
  receiverStats: ReceiverStats;
  /** After each frame this side published (the outgoing direction's figures). */
  onPublished?: (result: BroadcastResult) => void;
  /** Backoff between attempts to reach the partner, doubling from min to max (default 200 ms to 2 s). */
  backoffMs?: { min: number; max: number };
  /** Receivers that may watch this side at once (default 4: the partner, and a few more). */
  maxViewers?: number;
  /** Lines about the outgoing direction (this side's sender) and the incoming one (its receiver). */
  log: (direction: 'out' | 'in', line: string) => void;
  /** Ends the call: both directions say bye and close. */
  signal?: AbortSignal;
}

/** How a call ended: stopped (q, a signal, --duration), this side's source ended, or a half failed for good. */
export type CallEnd = { outcome: 'stopped' | 'source-ended' } | { outcome: 'failed'; error: Error };

/**
 * A two-way call over camstream: a sender of this side's source on host:port (StreamServer,
 * Broadcast and the capture pump, as camstream-sender runs them: flow control, quality rungs,
 * secret and TLS included) and a receiver of the partner's sender (receive(), as
 * camstream-receiver runs it), in one process. Either side may start first: the receiving half
 * retries until the partner answers, and again whenever it goes away. The call ends when stopped,
 * when this side's source ends, or when the partner refuses for a reason retrying cannot fix (a
 * wrong secret, an untrusted certificate); ending it closes both directions.
 */
export class Call {
  private constructor(
    /** This side's sender: the partner (and anyone else allowed) watches it here. */
    readonly server: StreamServer,
    /** Resolves once both directions are closed. */
    readonly finished: Promise<CallEnd>,
    private readonly ending: AbortController,
  ) {}

  static async start(options: CallOptions): Promise<Call> {
    const { source, log } = options;
    const { width, height, fps } = source.info;
    const broadcast = new Broadcast({
      codec: options.codec,
      stream: {
        width,
        height,
        fps,
        pixelFormat: 'bgr24',
        encoding: options.encoding,
        ...(options.encoding === 'jpeg' ? { quality: options.quality ?? 80 } : {}),
        source: source.info.description.slice(0, 200),
      },
    });
    const server = await StreamServer.listen({
      host: options.host,
      port: options.port,
      broadcast,
      name: options.name,
      maxViewers: options.maxViewers ?? 4,
      adapt: options.adapt ?? true,
      ...(options.secret ? { secret: options.secret } : {}),
      ...(options.tls ? { tls: options.tls } : {}),
      log: (line) => log('out', line),
    });
    const ending = new AbortController();
    const onAbort = () => ending.abort();
    if (options.signal?.aborted) ending.abort();
    options.signal?.addEventListener('abort', onAbort, { once: true });

    const { partner } = options;
    log('in', `watching the partner at ${partner.host}:${partner.port} (it may start later: this side retries until it answers)`);
    const pumping = pumpFrames({
      source,
      broadcast,
      ...(options.preview ? { preview: options.preview } : {}),
      ...(options.onPublished ? { onPublished: options.onPublished } : {}),
      signal: ending.signal,
    });
    const receiving = receive({
      host: partner.host,
      port: partner.port,
      name: options.name,
      codec: options.codec,
      openSinks: options.openPartnerSinks,
      reconnect: true,
      backoffMs: options.backoffMs ?? { min: 200, max: 2000 },
      security: {
        ...(options.secret ? { secret: options.secret } : {}),
        ...(options.partnerTls ? { tls: options.partnerTls } : {}),
      },
      ...(options.maxStreamSize ? { maxStreamSize: options.maxStreamSize } : {}),
      stats: options.receiverStats,
      log: collapseRetries((line) => log('in', line)),
      signal: ending.signal,
    });

    const finished = (async (): Promise<CallEnd> => {
      let end: CallEnd;
      try {
        // Whichever half ends first ends the call: the other is stopped.
        const first = await Promise.race([pumping.then((pumped) => ({ pumped })), receiving.then((received) => ({ received }))]);
        ending.abort();
        const [pumped, received] = await Promise.all([pumping, receiving]);
        end = callEnd(pumped, received, 'pumped' in first ? 'out' : 'in');
      } catch (error) {
        ending.abort();
        await Promise.allSettled([pumping, receiving]);
        end = { outcome: 'failed', error: error as Error };
      } finally {
        options.signal?.removeEventListener('abort', onAbort);
      }
      await server.close(end.outcome === 'failed' ? 'the call failed' : 'the call ended');
      return end;
    })();
    return new Call(server, finished, ending);
  }

  /** Ends the call (both directions); `finished` resolves once they are closed. */
  hangUp(): Promise<CallEnd> {
    this.ending.abort();
    return this.finished;
  }
}

function callEnd(pumped: PumpResult, received: ReceiverResult, first: 'out' | 'in'): CallEnd {
  if (received.outcome === 'failed') return { outcome: 'failed', error: received.error };
  if (first === 'out' && pumped === 'source-ended') return { outcome: 'source-ended' };
  return { outcome: 'stopped' };
}

/**
 * While the partner is not there yet, the receiving half retries every second or two: the first
 * failure and its retry are logged, the same failure again and again is not, until something else
 * happens (it connects, or fails another way).
 */
export function collapseRetries(log: (line: string) => void): (line: string) => void {
  let previous: string | undefined;
  let repeating = false;
  return (line) => {
    if (line.startsWith('reconnecting in ')) {
      if (!repeating) log(line);
      return;
    }
    repeating = line === previous;
    if (repeating) return;
    previous = line;
    log(line);
  };
}
