import { newNonce, type ProtocolError, type SessionError, type StreamDescription } from '@camstream/protocol';
import { errors, headers as natsHeaders, type Msg, type Subscription } from '@nats-io/transport-node';
import { type AnnouncementVerdict, type CameraCounts, CameraTracker, type IncomingMessage, type NatsFrame, type Outage, type RefusalReason } from './camera-tracker';
import type { NatsLink } from './connection';
import { type CameraSelection, cameraOfSubject, cameraSubject, checkCameraName, everyCameraSubject } from './subjects';
import { HEADER_EPOCH, HEADER_NONCE, HEADER_RECONNECTS, HEADER_SIGNATURE } from './wire';

export interface CameraSubscriberOptions {
  /** '*' for every camera on the bus, or a list of names. */
  cameras: CameraSelection;
  /** Shared secret: refuse every message that is not signed with it (and replays). */
  secret?: string;
  /**
   * Gets the newest checked frame of a camera. While a call for a camera has not settled (its
   * promise), newer frames of that camera replace each other and only the newest is handed over
   * next: a slow consumer gets fresh frames, never a queue.
   */
  onFrame: (frame: NatsFrame) => void | Promise<void>;
  /** Streams, outages, refusals, corrupt messages, connection changes: for logs and figures. */
  onEvent?: (event: SubscriberEvent) => void;
  /** No frame for longer than this is an outage (default: 5 frame intervals, at least 500 ms). */
  outageAfterMs?: number;
  /** Streams larger than this are refused (default 7680x4320). */
  maxSize?: { width: number; height: number };
  /** How long to wait for a describe reply (default 2000 ms). */
  describeTimeoutMs?: number;
  /** With '*': how many cameras to follow at most; messages of more are ignored (default 256). */
  maxCameras?: number;
  /** Clock for arrival times, ms since the Unix epoch (default: performance.timeOrigin + performance.now()). */
  now?: () => number;
}

export type SubscriberEvent =
  | { type: 'stream'; camera: string; epoch: string; stream: StreamDescription; senderName: string | undefined; restarted: boolean }
  | { type: 'outage-start'; camera: string; since: number }
  | { type: 'outage-end'; camera: string; outage: Outage }
  | { type: 'refused'; camera: string; reason: RefusalReason; detail: string }
  | { type: 'corrupt'; camera: string; error: ProtocolError | SessionError }
  | { type: 'consumer-error'; camera: string; error: unknown }
  | { type: 'link'; state: 'disconnected' | 'reconnected'; server: string }
  | { type: 'too-many-cameras'; camera: string; limit: number }
  /** A describe request failed for a reason other than no sender, a timeout or a closed connection. */
  | { type: 'describe-failed'; camera: string; error: unknown };

export interface CameraStats extends CameraCounts {
  /** Frames handed to onFrame. */
  delivered: number;
  /** Frames replaced by a newer one before onFrame could take them (latest-wins). */
  skipped: number;
  /** Frames waiting for onFrame: 0 or 1. */
  held: number;
}

/** A synchronous consumer that blocked the event loop this long may have left a backlog at the server... */
const DRAIN_AFTER_BLOCK_MS = 20;
/** ...read by waits this long, while each brings a newer frame... */
const DRAIN_WAIT_MS = 2;
/** ...for at most as long as it blocked, and never more than this. */
const MAX_DRAIN_MS = 250;

/** A describe request at most this often per camera. */
const DESCRIBE_INTERVAL_MS = 1000;

interface CameraState {
  tracker: CameraTracker;
  slot: NatsFrame | undefined;
  busy: boolean;
  delivered: number;
  skipped: number;
  describing: boolean;
  lastDescribeAt: number;
  /** A describe request waiting for the rate limit. */
  describeTimer: NodeJS.Timeout | undefined;
}

/** Frames offered to the consumer so far: each was handed over, replaced by a newer one, or waits. */
function offeredOf(state: CameraState): number {
  return state.delivered + state.skipped + (state.slot ? 1 : 0);
}

function statsOf(state: CameraState): CameraStats {
  return { ...state.tracker.stats, delivered: state.delivered, skipped: state.skipped, held: state.slot ? 1 : 0 };
}

/**
 * Watches cameras on NATS (PROTOCOL.md, "Over NATS"). Reads every message as it arrives (the
 * NATS client never queues, so the server never cuts this subscriber off as a slow consumer),
 * checks it (CameraTracker) and keeps, per camera, only the newest frame for the consumer.
 */
export class CameraSubscriber {
  private readonly cameras = new Map<string, CameraState>();
  private readonly subscriptions: Subscription[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly sweep: NodeJS.Timeout;
  private readonly stopListening: () => void;
  private readonly now: () => number;
  private readonly watchAll: boolean;
  private readonly ignoredCameras = new Set<string>();
  private isClosed = false;

  private constructor(
    private readonly link: NatsLink,
    private readonly options: CameraSubscriberOptions,
  ) {
    this.now = options.now ?? (() => performance.timeOrigin + performance.now());
    this.watchAll = options.cameras === '*';
    if (options.cameras === '*') {
      this.listen(everyCameraSubject('frames'), (msg) => this.onFrameMessage(msg));
      this.listen(everyCameraSubject('hello'), (msg) => this.onHelloMessage(msg));
    } else {
      if (options.cameras.length === 0) throw new RangeError('a subscriber needs at least one camera, or "*"');
      // Every name is checked before anything is subscribed.
      options.cameras.forEach(checkCameraName);
      for (const camera of options.cameras) {
        this.stateOf(camera);
        this.listen(cameraSubject(camera, 'frames'), (msg) => this.onFrameMessage(msg));
        this.listen(cameraSubject(camera, 'hello'), (msg) => this.onHelloMessage(msg));
      }
    }
    this.stopListening = link.onEvent((event) => {
      if (event.type === 'disconnected') {
        for (const state of this.cameras.values()) state.tracker.linkInterrupted();
        this.emit({ type: 'link', state: 'disconnected', server: event.server });
      } else if (event.type === 'reconnected') {
        this.emit({ type: 'link', state: 'reconnected', server: event.server });
      }
    });
    this.sweep = setInterval(() => this.checkOutages(), 100);
    this.sweep.unref();
  }

  /**
   * Subscribes; resolves once the server has the subscriptions. Cameras named in the list are
   * described at once (a receiver learns their streams without waiting for an announcement).
   */
  static async start(link: NatsLink, options: CameraSubscriberOptions): Promise<CameraSubscriber> {
    const subscriber = new CameraSubscriber(link, options);
    await link.connection.flush();
    for (const camera of subscriber.cameras.keys()) subscriber.describe(camera);
    return subscriber;
  }

  /** Counts per camera, in the order the cameras were first seen. */
  stats(): CameraStats[] {
    return [...this.cameras.values()].map(statsOf);
  }

  /** Counts of one camera (undefined if it was never seen). */
  statsOf(camera: string): CameraStats | undefined {
    const state = this.cameras.get(camera);
    return state && statsOf(state);
  }

  /** Unsubscribes and stops; resolves once the consumer calls under way have settled. The link stays open. */
  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    clearInterval(this.sweep);
    for (const state of this.cameras.values()) clearTimeout(state.describeTimer);
    this.stopListening();
    if (!this.link.done) for (const subscription of this.subscriptions) subscription.unsubscribe();
    await Promise.all(this.inFlight);
  }

  /** A callback subscription: nats.js hands each message over as it parses it, with no queue of its own. */
  private listen(subject: string, onMessage: (msg: Msg) => void): void {
    this.subscriptions.push(
      this.link.connection.subscribe(subject, {
        callback: (error, msg) => {
          if (!error) onMessage(msg);
        },
      }),
    );
  }

  private emit(event: SubscriberEvent): void {
    this.options.onEvent?.(event);
  }

  private stateOf(camera: string): CameraState | undefined {
    let state = this.cameras.get(camera);
    if (state) return state;
    const limit = this.options.maxCameras ?? 256;
    if (this.watchAll && this.cameras.size >= limit) {
      if (!this.ignoredCameras.has(camera) && this.ignoredCameras.size < limit) {
        this.ignoredCameras.add(camera);
        this.emit({ type: 'too-many-cameras', camera, limit });
      }
      return undefined;
    }
    state = {
      tracker: new CameraTracker({
        camera,
        secret: this.options.secret,
        maxMessageBytes: Math.max(this.link.maxPayload, 1024 * 1024),
        outageAfterMs: this.options.outageAfterMs,
        maxSize: this.options.maxSize,
      }),
      slot: undefined,
      busy: false,
      delivered: 0,
      skipped: 0,
      describing: false,
      lastDescribeAt: -Infinity,
      describeTimer: undefined,
    };
    this.cameras.set(camera, state);
    return state;
  }

  private incoming(msg: Msg, subject: string): IncomingMessage {
    const headers = msg.headers;
    return {
      subject,
      body: msg.data,
      epoch: headers?.get(HEADER_EPOCH) || undefined,
      reconnects: headers?.get(HEADER_RECONNECTS) || undefined,
      signature: headers?.get(HEADER_SIGNATURE) || undefined,
      arrivedAt: this.now(),
    };
  }

  private onFrameMessage(msg: Msg): void {
    if (this.isClosed) return;
    const camera = cameraOfSubject(msg.subject, 'frames');
    const state = camera === undefined ? undefined : this.stateOf(camera);
    if (!state) return;
    const verdict = state.tracker.frame(this.incoming(msg, msg.subject));
    switch (verdict.kind) {
      case 'accepted':
        if (verdict.outage) this.emit({ type: 'outage-end', camera: state.tracker.camera, outage: verdict.outage });
        this.offer(state, verdict.frame);
        break;
      case 'unannounced':
        this.describe(state.tracker.camera);
        break;
      case 'refused':
        this.emit({ type: 'refused', camera: state.tracker.camera, reason: verdict.reason, detail: verdict.detail });
        if (verdict.describe) this.describe(state.tracker.camera);
        break;
      case 'corrupt':
        this.emit({ type: 'corrupt', camera: state.tracker.camera, error: verdict.error });
        break;
    }
  }

  private onHelloMessage(msg: Msg): void {
    if (this.isClosed) return;
    const camera = cameraOfSubject(msg.subject, 'hello');
    const state = camera === undefined ? undefined : this.stateOf(camera);
    if (!state) return;
    this.handleAnnouncement(state, state.tracker.announcement(this.incoming(msg, msg.subject)));
  }

  private handleAnnouncement(state: CameraState, verdict: AnnouncementVerdict): void {
    const camera = state.tracker.camera;
    switch (verdict.kind) {
      case 'adopted':
        this.emit({ type: 'stream', camera, epoch: verdict.epoch, stream: verdict.stream, senderName: verdict.senderName, restarted: verdict.restarted });
        break;
      case 'describe':
        this.describe(camera);
        break;
      case 'refused':
        this.emit({ type: 'refused', camera, reason: verdict.reason, detail: verdict.detail });
        break;
      case 'corrupt':
        this.emit({ type: 'corrupt', camera, error: verdict.error });
        break;
      case 'current':
        break;
    }
  }

  /**
   * Asks the camera's sender for its announcement, bound to a fresh nonce: one request at a time
   * per camera, at most one a second (a request asked for sooner is sent when that second is up).
   */
  private describe(camera: string): void {
    const state = this.cameras.get(camera);
    if (!state || state.describing || state.describeTimer || this.isClosed || this.link.done) return;
    const wait = state.lastDescribeAt + DESCRIBE_INTERVAL_MS - this.now();
    if (wait > 0) {
      state.describeTimer = setTimeout(() => {
        state.describeTimer = undefined;
        this.describe(camera);
      }, wait);
      state.describeTimer.unref();
      return;
    }
    state.describing = true;
    state.lastDescribeAt = this.now();
    const nonce = newNonce();
    const headers = natsHeaders();
    headers.set(HEADER_NONCE, nonce);
    const subject = cameraSubject(camera, 'describe');
    this.link.connection
      .request(subject, new Uint8Array(0), { timeout: this.options.describeTimeoutMs ?? 2000, headers })
      .then(
        (reply) => {
          if (!this.isClosed) this.handleAnnouncement(state, state.tracker.announcement(this.incoming(reply, subject), nonce));
        },
        (error: unknown) => {
          // No sender yet: its first announcement is news, to be described at once.
          const noSender = error instanceof errors.NoRespondersError || (error instanceof errors.RequestError && error.isNoResponders());
          if (noSender) state.lastDescribeAt = -Infinity;
          // Otherwise it did not answer in time, or the connection went: its announcement or next frame brings us back.
          const expected = noSender || error instanceof errors.TimeoutError || error instanceof errors.RequestError || error instanceof errors.ClosedConnectionError;
          if (!expected) this.emit({ type: 'describe-failed', camera, error });
        },
      )
      .finally(() => {
        state.describing = false;
      });
  }

  private checkOutages(): void {
    const now = this.now();
    for (const state of this.cameras.values()) {
      const began = state.tracker.checkOutage(now);
      if (began) this.emit({ type: 'outage-start', camera: state.tracker.camera, since: began.since });
    }
  }

  /**
   * Latest-wins: the frame waits in the camera's one slot, replacing any older one, until the
   * consumer is free. A consumer is busy until its promise settles; one that returns nothing is
   * busy until the event loop's next turn, so that frames that piled up in the socket while it
   * blocked the loop are all read first and it gets the newest of them, not each in turn. After a
   * long block the kernel's receive buffer may have held only part of the backlog, the rest
   * waiting at the server: then it stays busy while reads keep bringing newer frames (drain).
   */
  private offer(state: CameraState, frame: NatsFrame): void {
    if (state.slot) state.skipped++;
    state.slot = frame;
    if (!state.busy) this.deliver(state);
  }

  private deliver(state: CameraState): void {
    const frame = state.slot;
    if (!frame || state.busy || this.isClosed) return;
    state.slot = undefined;
    state.busy = true;
    state.delivered++;
    const done = () => {
      state.busy = false;
      this.deliver(state);
    };
    const failed = (error: unknown) => this.emit({ type: 'consumer-error', camera: frame.camera, error });
    let result: void | Promise<void> = undefined;
    const calledAt = performance.now();
    try {
      result = this.options.onFrame(frame);
    } catch (error) {
      failed(error);
    }
    if (result && typeof result.then === 'function') {
      const settled = result.then(undefined, failed).finally(() => {
        this.inFlight.delete(settled);
        done();
      });
      this.inFlight.add(settled);
    } else {
      const blockedMs = performance.now() - calledAt;
      if (blockedMs < DRAIN_AFTER_BLOCK_MS) setImmediate(done);
      else this.drain(state, performance.now() + Math.min(blockedMs, MAX_DRAIN_MS), done);
    }
  }

  /**
   * Calls `done` once a short wait brings no newer frame of the camera (the backlog is read), or at
   * `deadline`. A blocked loop does not read: the server held what the socket could not, and sends
   * it as reads make room, a buffer's worth at a time.
   */
  private drain(state: CameraState, deadline: number, done: () => void): void {
    const before = offeredOf(state);
    setTimeout(() => {
      if (offeredOf(state) !== before && performance.now() < deadline && !this.isClosed) this.drain(state, deadline, done);
      else done();
    }, DRAIN_WAIT_MS);
  }
}
