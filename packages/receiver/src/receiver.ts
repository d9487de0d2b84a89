import type { PreparedH264Decoder } from '@camstream/ffmpeg';
import type { FrameCodec, FrameSink } from '@camstream/media';
import { frameLimit, type FrameHeader, type StreamDescription } from '@camstream/protocol';
import { createCameraPipeline } from './pipeline/camera-pipeline';
import { checkH264Frame } from './pipeline/h264-check';
import { runSession, type SessionEnd, type SessionHandlers, type SessionOptions } from './session/connection';
import { keepConnected } from './session/reconnect';
import { runTutorialSession } from './session/tutorial-connection';
import type { ReceiverStats } from './stats';

export interface ReceiverOptions {
  /**
   * camstream (default): the camstream protocol. tutorial: the tutorial's pickles (no handshake,
   * security, sequence numbers or capture times; `security`, `name` and `timeouts.handshakeTimeoutMs`
   * do not apply). Give the stats TUTORIAL_WIRE_NOT_KNOWN with it.
   */
  wire?: 'camstream' | 'tutorial';
  host: string;
  port: number;
  name: string;
  codec: FrameCodec;
  /** Opens the sinks (window, recorder) once the stream's size is known. */
  openSinks: (stream: StreamDescription) => Promise<FrameSink[]>;
  /** Sinks that live for the whole run, across reconnects (the browser viewer). */
  lastingSinks?: FrameSink[];
  /**
   * Sees every checked frame before decoding, e.g. to forward JPEG payloads untouched. It may keep
   * the payload (it is then never reused), unless `onFrameKeepsPayload` says it does not: then the
   * payload may be a pooled buffer that is overwritten once the frame is done, and must not be kept.
   */
  onFrame?: (header: FrameHeader, payload: Buffer) => void;
  /**
   * Whether onFrame keeps a frame's payload (default true, for every frame). False, or false for
   * some frames, lets those payloads land in reused buffers (a raw frame then costs no page faults).
   */
  onFrameKeepsPayload?: boolean | ((header: FrameHeader) => boolean);
  /** Called once per connection, when the handshake is over: the stream and who sends it. */
  onStream?: (stream: StreamDescription, details: { senderName: string | undefined }) => void;
  /** Frames decoded at once when they arrive faster than one decode takes (default: cores, at most 4). */
  decodeConcurrency?: number;
  /** An H.264 decoder process started ahead (see PreparedH264Decoder); ended when the stream is not H.264, or at the end of the run. */
  preparedH264Decoder?: PreparedH264Decoder;
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

/**
 * Connects, checks and decodes frames, feeds the sinks; reconnects with exponential backoff when
 * the sender is not there yet or goes away. Three stages, one per folder: session/ (a connection
 * and the reconnect loop: every frame checked and acknowledged as it arrives), pipeline/ (decode,
 * latest-wins, in order; lower rungs scaled to the stream's size; H.264 through one decoder that
 * sees every access unit, latest-wins after it), sinks/ (where frames go).
 * Large payloads and decoded pixels live in reused buffers, given back once every sink is done.
 */
export async function receive(options: ReceiverOptions): Promise<ReceiverResult> {
  const { stats, log, signal } = options;
  let sinkError: Error | undefined;
  let received = 0;
  /** A sender here answered in plain camstream before: a later close before its hello is no TLS mismatch. */
  let spokePlainCamstream = false;
  const done = new AbortController();
  const stopBoth = AbortSignal.any([signal, done.signal]);
  /** The error the caller stopped the run with, if any: it reports it, so it is not logged here. */
  const stoppedWith = (): Error | undefined =>
    signal.aborted && signal.reason instanceof Error && signal.reason.name !== 'AbortError' ? signal.reason : undefined;

  const { pipeline, sinks, payloads } = createCameraPipeline({
    codec: options.codec,
    openSinks: options.openSinks,
    lastingSinks: options.lastingSinks ?? [],
    ...(options.decodeConcurrency === undefined ? {} : { decodeConcurrency: options.decodeConcurrency }),
    ...(options.preparedH264Decoder ? { preparedH264Decoder: options.preparedH264Decoder } : {}),
    stats,
    log,
    stoppedWith,
    onSinkFailed: (error) => {
      sinkError = error;
      done.abort();
    },
  });
  /** The largest frame the current stream may send (an h264 access unit is checked against it). */
  let maxFrameBytes = 0;
  const keepsPayload = options.onFrameKeepsPayload ?? true;
  /** A payload may go back to the pool unless onFrame keeps it. */
  const reusable = (header: FrameHeader) => options.onFrame === undefined || (typeof keepsPayload === 'function' ? !keepsPayload(header) : !keepsPayload);

  try {
    const handlers: SessionHandlers = {
      onStream: (stream, { rungs, senderName }) => {
        log(`connected to ${options.host}:${options.port}: ${stream.source ?? 'stream'} ${stream.width}x${stream.height} ${stream.encoding}${options.wire === 'tutorial' ? '' : ` @ ${stream.fps} fps`}`);
        options.onStream?.(stream, { senderName });
        connected();
        if (!options.security?.tls) spokePlainCamstream = true;
        stats.streamStarted(rungs);
        pipeline.setStream(stream);
        maxFrameBytes = frameLimit(stream);
        sinks.openFor(stream);
      },
      onFrame: (header, payload, checks) => {
        // Before anything reads it: a payload that is no proper access unit ends the session.
        if (header.encoding === 'h264') checkH264Frame(header, payload, maxFrameBytes);
        stats.frameReceived({ payloadBytes: payload.length, ...checks });
        options.onFrame?.(header, payload);
        received++;
        pipeline.offer({ header, payload, pooled: checks.pooled && reusable(header), rung: checks.rung });
        if (options.maxFrames !== undefined && received >= options.maxFrames) done.abort();
      },
    };
    /** Resets the backoff of the connection under way: its stream has started. */
    let connected: () => void = () => undefined;
    const connectOnce = (onConnected: () => void): Promise<SessionEnd> => {
      connected = onConnected;
      stats.connecting((ms) => log(`first picture ${Math.round(ms)} ms after connecting`));
      if (options.wire === 'tutorial') {
        return runTutorialSession(
          {
            host: options.host,
            port: options.port,
            signal: stopBoth,
            ...(options.maxStreamSize ? { maxSize: options.maxStreamSize } : {}),
            ...(options.timeouts?.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: options.timeouts.idleTimeoutMs }),
            payloadBuffers: payloads,
            log,
          },
          handlers,
        );
      }
      return runSession(
        {
          host: options.host,
          port: options.port,
          name: options.name,
          signal: stopBoth,
          ...options.security,
          ...options.timeouts,
          ...(options.maxStreamSize ? { maxStreamSize: options.maxStreamSize } : {}),
          payloadBuffers: payloads,
          spokePlainCamstream,
        },
        handlers,
      );
    };
    const end = await keepConnected(
      connectOnce,
      {
        reconnect: options.reconnect,
        ...(options.backoffMs ? { backoffMs: options.backoffMs } : {}),
        log,
        signal: stopBoth,
        onCorruptBytes: () => stats.corrupt++,
      },
    );
    await pipeline.idle();
    if (end.kind === 'failed') return { outcome: 'failed', error: end.error };
    if (end.kind === 'sender-finished') return { outcome: 'sender-finished' };
    if (sinkError) return { outcome: 'failed', error: sinkError };
    const error = stoppedWith();
    if (error) return { outcome: 'failed', error };
    return { outcome: done.signal.aborted ? 'frames-reached' : 'stopped' };
  } finally {
    await sinks.ready();
    await pipeline.close();
    await sinks.close();
  }
}
