import {
  checkFrameAgainstStream,
  DEFAULT_MAX_STREAM_SIZE,
  type FrameHeader,
  frameLimit,
  ProtocolError,
  type Rung,
  SchemaError,
  SessionError,
  type StreamDescription,
  streamRungs,
} from '@camstream/protocol';
import { compareEpochs, type ParsedEpoch, parseEpoch } from './epoch';
import { type SignedFields, signatureMatches } from './signing';
import { decodeWholeMessage } from './wire';

/*
 * What a receiver knows about one camera on the bus, free of NATS and timers (PROTOCOL.md,
 * "Over NATS", receiving): which sender run (epoch) it follows and what that run announced; the
 * checks every message passes (signature, epoch, bytes, sequence, announced stream); and the
 * counts: frames, declared drops, frames lost in transport, undeclared gaps, corrupt and refused
 * messages, outages.
 */

export interface CameraTrackerOptions {
  camera: string;
  /** With a secret, unsigned or wrongly signed messages are refused, and replays with them. */
  secret?: string;
  /** Largest message accepted, in bytes (the server's max_payload is the natural choice). */
  maxMessageBytes: number;
  /** No frame for longer than this is an outage (default: 5 frame intervals of the announced fps, at least 500 ms; 2000 ms if fps is 0). */
  outageAfterMs?: number;
  /** Streams larger than this are refused (default 7680x4320, as over TCP). */
  maxSize?: { width: number; height: number };
}

/** A NATS message as the tracker needs it: what was signed, and when it arrived. */
export interface IncomingMessage {
  /** The subject the signature covers: the message's subject, or for a describe reply the describe subject. */
  subject: string;
  body: Uint8Array;
  epoch: string | undefined;
  reconnects: string | undefined;
  signature: string | undefined;
  /** Arrival time, ms (the same clock as every other call's `now`). */
  arrivedAt: number;
}

export type RefusalReason = 'unsigned' | 'bad-signature' | 'replayed' | 'stale-epoch';

/**
 * Why the stream was interrupted, most specific first: this receiver's connection went down, the
 * sender's did (its reconnect count rose), the sender restarted (a new run), or no frame came for
 * longer than the outage threshold with no connection known to have broken.
 */
export type OutageCause = 'receiver-reconnected' | 'sender-reconnected' | 'sender-restarted' | 'silence';

/** An interruption of a camera's stream, reported when its frames come again. */
export interface Outage {
  cause: OutageCause;
  /** Arrival of the last frame before, and of the first frame after (ms, the tracker's clock). */
  startedAt: number;
  endedAt: number;
  lengthMs: number;
  /** Frames of the same sender run missing across it that the sender did not declare: lost in transport. */
  lostFrames: number;
  /** Frames the sender declared it dropped across it (it could not publish them). */
  declaredDrops: number;
}

/** A frame that passed every check, with what its sequence number says about the frames before it. */
export interface NatsFrame {
  camera: string;
  epoch: string;
  header: FrameHeader;
  payload: Buffer;
  /** The quality rung (0: the stream itself). */
  rung: number;
  /** The stream this sender run announced. */
  stream: StreamDescription;
  /** When the message arrived (ms since the Unix epoch, this host's clock: compare with header.captureTime). */
  arrivedAt: number;
  /** Frames just before this one that the sender declared it dropped. */
  declaredDrops: number;
  /** Frames just before this one lost in transport: missing, undeclared, across a reconnect or an outage. */
  lostInTransport: number;
  /** Frames just before this one missing, undeclared, with no reconnect or outage to explain them (should stay 0). */
  undeclaredGap: number;
}

export type FrameVerdict =
  | { kind: 'accepted'; frame: NatsFrame; outage: Outage | undefined }
  | { kind: 'refused'; reason: RefusalReason; detail: string; describe: boolean }
  | { kind: 'corrupt'; error: ProtocolError | SessionError }
  /** A sender run newer than the one followed (or the first one) whose announcement is not known yet: describe the camera. */
  | { kind: 'unannounced'; epoch: string };

export type AnnouncementVerdict =
  | { kind: 'adopted'; epoch: string; stream: StreamDescription; senderName: string | undefined; restarted: boolean }
  /** The run followed already. */
  | { kind: 'current' }
  | { kind: 'refused'; reason: RefusalReason; detail: string }
  | { kind: 'corrupt'; error: ProtocolError | SessionError }
  /** Signed and new, but unsolicited: it may be a replay, so only a describe reply (fresh, bound to a nonce) can start following a camera. */
  | { kind: 'describe' };

export interface CameraCounts {
  camera: string;
  /** The sender run followed, and what it announced. */
  epoch: string | undefined;
  senderName: string | undefined;
  stream: StreamDescription | undefined;
  /** Sender runs followed so far (1 + restarts seen). */
  senderRuns: number;
  /** Frames that passed every check. */
  frames: number;
  lastSeq: number | undefined;
  declaredDrops: number;
  lostInTransport: number;
  undeclaredGaps: number;
  /** Messages whose bytes or contents are wrong (decoder errors, CRC, schema, not the announced stream). */
  corrupt: number;
  refused: { unsigned: number; badSignature: number; replayed: number; staleEpoch: number };
  /** Frames of a sender run whose announcement had not arrived yet (not checked, not counted as frames). */
  unannounced: number;
  outages: { count: number; totalMs: number; longestMs: number; current: { since: number } | undefined; recent: Outage[] };
  /** The last refusal or error, for logs. */
  lastProblem: string | undefined;
}

interface FollowedRun {
  epoch: string;
  parsed: ParsedEpoch;
  stream: StreamDescription;
  senderName: string | undefined;
  rungs: Rung[];
  maxFrameBytes: number;
  lastSeq: number | undefined;
  lastDropped: number;
  lastReconnects: string | undefined;
}

/** Outages kept in `recent`. */
const RECENT_OUTAGES = 20;
const MIN_OUTAGE_MS = 500;
const OUTAGE_FRAME_INTERVALS = 5;

export class CameraTracker {
  readonly camera: string;
  private run: FollowedRun | undefined;
  private lastFrameAt: number | undefined;
  private outageSince: number | undefined;
  /** Our own connection went down since the last frame: missing frames were lost in transport. */
  private interrupted = false;
  private readonly counts: CameraCounts;

  constructor(private readonly options: CameraTrackerOptions) {
    this.camera = options.camera;
    this.counts = {
      camera: options.camera,
      epoch: undefined,
      senderName: undefined,
      stream: undefined,
      senderRuns: 0,
      frames: 0,
      lastSeq: undefined,
      declaredDrops: 0,
      lostInTransport: 0,
      undeclaredGaps: 0,
      corrupt: 0,
      refused: { unsigned: 0, badSignature: 0, replayed: 0, staleEpoch: 0 },
      unannounced: 0,
      outages: { count: 0, totalMs: 0, longestMs: 0, current: undefined, recent: [] },
      lastProblem: undefined,
    };
  }

  /** A copy of the counts. */
  get stats(): CameraCounts {
    const { refused, outages } = this.counts;
    return { ...this.counts, refused: { ...refused }, outages: { ...outages, recent: [...outages.recent] } };
  }

  /** True once a sender run's announcement is known (frames can be checked). */
  get following(): boolean {
    return this.run !== undefined;
  }

  /** The outage threshold in force (ms). */
  get outageAfterMs(): number {
    if (this.options.outageAfterMs !== undefined) return this.options.outageAfterMs;
    const fps = this.run?.stream.fps ?? 0;
    return fps > 0 ? Math.max(MIN_OUTAGE_MS, (OUTAGE_FRAME_INTERVALS * 1000) / fps) : 2000;
  }

  /** This side's connection to NATS went down: frames missing across it are lost in transport. */
  linkInterrupted(): void {
    this.interrupted = true;
  }

  /** Call now and then: returns the start of an outage (no frame for outageAfterMs) once, when it begins. */
  checkOutage(now: number): { since: number } | undefined {
    if (this.lastFrameAt === undefined || this.outageSince !== undefined) return undefined;
    if (now - this.lastFrameAt <= this.outageAfterMs) return undefined;
    this.outageSince = this.lastFrameAt;
    this.counts.outages.current = { since: this.lastFrameAt };
    return { since: this.lastFrameAt };
  }

  /** An announcement: from the hello subject (`nonce` undefined) or a describe reply to our request with `nonce`. */
  announcement(message: IncomingMessage, nonce?: string): AnnouncementVerdict {
    const unsigned = this.checkSignature(message, nonce ?? '');
    if (unsigned) return unsigned;
    const parsed = parseEpoch(message.epoch);
    if (!parsed) return this.corrupt(new SchemaError(`announcement without a valid Camstream-Epoch header (${JSON.stringify(message.epoch)})`));
    if (this.run?.epoch === message.epoch) return { kind: 'current' };
    let stream: StreamDescription;
    let senderName: string | undefined;
    try {
      const { header } = decodeWholeMessage(message.body, { maxMessageBytes: this.options.maxMessageBytes });
      if (header.type !== 'hello' || header.role !== 'sender') throw new SessionError('ERR_UNEXPECTED', `expected a sender's hello in the announcement, got a '${header.type}' message`);
      stream = header.stream;
      senderName = header.name;
      const max = this.options.maxSize ?? DEFAULT_MAX_STREAM_SIZE;
      if (stream.width > max.width || stream.height > max.height) {
        throw new SessionError('ERR_STREAM_TOO_LARGE', `the sender announced a ${stream.width}x${stream.height} stream, larger than this receiver accepts (${max.width}x${max.height})`);
      }
    } catch (error) {
      if (error instanceof ProtocolError || error instanceof SessionError) return this.corrupt(error);
      throw error;
    }
    const solicited = nonce !== undefined;
    if (!solicited) {
      if (this.run === undefined && this.options.secret !== undefined) return { kind: 'describe' };
      if (this.run !== undefined && compareEpochs(parsed, this.run.parsed) < 0) {
        return this.refuse('stale-epoch', `announcement of sender run ${message.epoch}, older than the run followed (${this.run.epoch})`);
      }
    }
    // A describe reply answers our own nonce: fresh and authoritative, even for an older run (a sender whose clock went back).
    const restarted = this.run !== undefined;
    this.run = {
      epoch: message.epoch!,
      parsed,
      stream,
      senderName,
      // One stream per camera: announced rungs are ignored, a frame on a rung is refused.
      rungs: streamRungs(stream).slice(0, 1),
      maxFrameBytes: frameLimit(stream),
      lastSeq: undefined,
      lastDropped: 0,
      lastReconnects: undefined,
    };
    this.counts.epoch = message.epoch;
    this.counts.stream = stream;
    this.counts.senderName = senderName;
    this.counts.senderRuns++;
    this.counts.lastSeq = undefined;
    return { kind: 'adopted', epoch: message.epoch!, stream, senderName, restarted };
  }

  /** A message from the frames subject. */
  frame(message: IncomingMessage): FrameVerdict {
    const unsigned = this.checkSignature(message, '');
    if (unsigned) return { ...unsigned, describe: false };
    const parsed = parseEpoch(message.epoch);
    if (!parsed) return this.corrupt(new SchemaError(`frame without a valid Camstream-Epoch header (${JSON.stringify(message.epoch)})`));
    const run = this.run;
    if (run === undefined || run.epoch !== message.epoch) {
      if (run !== undefined && compareEpochs(parsed, run.parsed) < 0) {
        // Old run: a replay, or a sender whose clock went back (a describe tells which).
        return { ...this.refuse('stale-epoch', `frame of sender run ${message.epoch}, older than the run followed (${run.epoch})`), describe: true };
      }
      this.counts.unannounced++;
      return { kind: 'unannounced', epoch: message.epoch! };
    }
    let header: FrameHeader;
    let payload: Buffer;
    let rung: number;
    try {
      const decoded = decodeWholeMessage(message.body, { maxMessageBytes: this.options.maxMessageBytes, maxFrameBytes: run.maxFrameBytes });
      if (decoded.header.type !== 'frame') throw new SessionError('ERR_UNEXPECTED', `expected a frame, got a '${decoded.header.type}' message`);
      header = decoded.header;
      payload = decoded.payload;
      if (run.lastSeq !== undefined && header.seq <= run.lastSeq) {
        return { ...this.refuse('replayed', `frame ${header.seq} is not newer than frame ${run.lastSeq} of sender run ${run.epoch}`), describe: false };
      }
      if (run.lastSeq !== undefined) {
        if (header.dropped < run.lastDropped) throw new SessionError('ERR_OUT_OF_ORDER', `the sender's drop counter went back from ${run.lastDropped} to ${header.dropped}`);
        const missing = header.seq - run.lastSeq - 1;
        if (header.dropped - run.lastDropped > missing) {
          throw new SessionError('ERR_OUT_OF_ORDER', `frame ${header.seq} declares ${header.dropped - run.lastDropped} dropped frame(s) since frame ${run.lastSeq}, but only ${missing} are missing`);
        }
      }
      rung = checkFrameAgainstStream(header, run.stream, run.rungs);
    } catch (error) {
      if (error instanceof ProtocolError || error instanceof SessionError) return this.corrupt(error);
      throw error;
    }
    return this.accept(run, header, payload, rung, message);
  }

  private accept(run: FollowedRun, header: FrameHeader, payload: Buffer, rung: number, message: IncomingMessage): FrameVerdict {
    const { arrivedAt } = message;
    const previousAt = this.lastFrameAt;
    let declared = 0;
    let undeclared = 0;
    if (run.lastSeq !== undefined) {
      declared = header.dropped - run.lastDropped;
      undeclared = header.seq - run.lastSeq - 1 - declared;
    }
    // NATS delivers at most once: frames vanish when a connection breaks. Missing frames are
    // blamed on transport only when something broke in between; otherwise they are a gap.
    let cause: OutageCause | undefined;
    if (previousAt !== undefined) {
      if (this.interrupted) cause = 'receiver-reconnected';
      else if (run.lastReconnects !== undefined && message.reconnects !== run.lastReconnects) cause = 'sender-reconnected';
      else if (run.lastSeq === undefined) cause = 'sender-restarted';
      else if (arrivedAt - previousAt > this.outageAfterMs) cause = 'silence';
    }
    const lost = cause ? undeclared : 0;
    const gap = cause ? 0 : undeclared;
    let outage: Outage | undefined;
    if (cause) {
      const lengthMs = arrivedAt - previousAt!;
      outage = { cause, startedAt: previousAt!, endedAt: arrivedAt, lengthMs, lostFrames: lost, declaredDrops: declared };
      const outages = this.counts.outages;
      outages.count++;
      outages.totalMs += lengthMs;
      outages.longestMs = Math.max(outages.longestMs, lengthMs);
      outages.recent.push(outage);
      if (outages.recent.length > RECENT_OUTAGES) outages.recent.shift();
    }
    this.outageSince = undefined;
    this.counts.outages.current = undefined;
    this.interrupted = false;
    this.lastFrameAt = arrivedAt;
    run.lastSeq = header.seq;
    run.lastDropped = header.dropped;
    run.lastReconnects = message.reconnects;
    this.counts.frames++;
    this.counts.lastSeq = header.seq;
    this.counts.declaredDrops += declared;
    this.counts.lostInTransport += lost;
    this.counts.undeclaredGaps += gap;
    return {
      kind: 'accepted',
      outage,
      frame: {
        camera: this.camera,
        epoch: run.epoch,
        header,
        payload,
        rung,
        stream: run.stream,
        arrivedAt,
        declaredDrops: declared,
        lostInTransport: lost,
        undeclaredGap: gap,
      },
    };
  }

  /** With a secret: the refusal of a message that is unsigned or wrongly signed; otherwise undefined. */
  private checkSignature(message: IncomingMessage, nonce: string): Extract<FrameVerdict, { kind: 'refused' }> | undefined {
    const { secret } = this.options;
    if (secret === undefined) return undefined;
    if (message.signature === undefined) return { ...this.refuse('unsigned', `unsigned message on ${message.subject}: this receiver requires signed messages`), describe: false };
    const fields: SignedFields = { subject: message.subject, epoch: message.epoch ?? '', reconnects: message.reconnects ?? '', nonce, message: message.body };
    if (!signatureMatches(secret, fields, message.signature)) {
      return { ...this.refuse('bad-signature', `message on ${message.subject} with a wrong signature (another key, or altered)`), describe: false };
    }
    return undefined;
  }

  private refuse(reason: RefusalReason, detail: string): { kind: 'refused'; reason: RefusalReason; detail: string } {
    const refused = this.counts.refused;
    if (reason === 'unsigned') refused.unsigned++;
    else if (reason === 'bad-signature') refused.badSignature++;
    else if (reason === 'replayed') refused.replayed++;
    else refused.staleEpoch++;
    this.counts.lastProblem = detail;
    return { kind: 'refused', reason, detail };
  }

  private corrupt(error: ProtocolError | SessionError): { kind: 'corrupt'; error: ProtocolError | SessionError } {
    this.counts.corrupt++;
    this.counts.lastProblem = error.message;
    return { kind: 'corrupt', error };
  }
}
