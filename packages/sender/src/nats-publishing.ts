import type { Delivery, Outlet } from '@camstream/fanout';
import { CameraPublisher, connectNats, type NatsLink, NatsTransportError, PayloadTooLargeError, type PublisherStats } from '@camstream/nats';
import type { Broadcast } from './broadcast';
import type { OutgoingFrame } from './outgoing-frame';

export interface NatsPublishingOptions {
  /** nats://... or tls://..., as connectNats takes it (credentials in it or in the environment). */
  url: string;
  /** The camera's name on the bus (checked by CameraPublisher). */
  camera: string;
  credsFile?: string;
  caFile?: string;
  /** Sign every message with this shared secret (PROTOCOL.md 9.5). */
  secret?: string;
  /** The sender's name in its announcement. */
  senderName?: string;
  /** The stream it joins as one more outlet, always on rung 0. */
  broadcast: Pick<Broadcast, 'stream' | 'add' | 'delete'>;
  /** Where NATS_USER, NATS_PASSWORD, NATS_TOKEN, NATS_CREDS and NATS_CA are read (default process.env). */
  env?: Record<string, string | undefined>;
  log: (line: string) => void;
}

/** What the stats and /metrics show of the NATS side. */
export interface NatsFigures extends PublisherStats {
  connected: boolean;
  /** The server connected to (host:port). */
  server: string;
}

/** Repeated failures of the same kind are logged at most this often. */
const FAILURE_LOG_INTERVAL_MS = 10_000;

/**
 * The sender's NATS side: one more outlet of the broadcast, always on rung 0, that publishes the
 * frame message the broadcast prepared once (the same bytes every TCP viewer on rung 0 gets: no
 * re-encode, nothing per subscriber) through a CameraPublisher. It never holds a frame: publishing
 * copies the message into the NATS client's buffer at once, or drops it (disconnected, or the
 * server behind), which the publisher declares in the next frame.
 */
export class NatsPublishing implements Outlet<OutgoingFrame> {
  private readonly stopListening: () => void;
  private lastFailureLog = new Map<string, number>();
  private failuresSinceLog = new Map<string, number>();
  private closed = false;

  private constructor(
    private readonly link: NatsLink,
    private readonly publisher: CameraPublisher,
    private readonly options: NatsPublishingOptions,
  ) {
    const { log } = options;
    this.stopListening = link.onEvent((event) => {
      if (event.type === 'disconnected') log(`NATS: lost the connection to ${event.server}: frames are dropped (and declared) until it is back`);
      else if (event.type === 'reconnected') log(`NATS: reconnected to ${event.server}; ${publisher.stats.framesDropped} frames dropped so far`);
      else if (event.type === 'closed' && event.error && !this.closed) log(`NATS: the connection is closed for good: ${event.error.message}; publishing to NATS stopped (TCP goes on)`);
    });
  }

  /**
   * Connects, announces the camera and joins the broadcast. Throws NatsTransportError with one
   * clear sentence (e.g. `NATS at 127.0.0.1:4222 refused the credentials: ...`) when it cannot.
   */
  static async start(options: NatsPublishingOptions): Promise<NatsPublishing> {
    const link = await connectNats({
      url: options.url,
      name: `camstream-sender ${options.camera}`,
      ...(options.credsFile ? { credsFile: options.credsFile } : {}),
      ...(options.caFile ? { caFile: options.caFile } : {}),
      ...(options.env ? { env: options.env } : {}),
    });
    let publisher: CameraPublisher;
    try {
      publisher = await CameraPublisher.start(link, {
        camera: options.camera,
        stream: options.broadcast.stream,
        ...(options.senderName === undefined ? {} : { senderName: options.senderName }),
        ...(options.secret === undefined ? {} : { secret: options.secret }),
      });
    } catch (error) {
      await link.close();
      throw error;
    }
    const publishing = new NatsPublishing(link, publisher, options);
    options.broadcast.add(publishing);
    options.log(`publishing camera ${publisher.camera} to NATS at ${link.server}${options.secret ? ' (every message signed)' : ''}`);
    return publishing;
  }

  get camera(): string {
    return this.publisher.camera;
  }

  get figures(): NatsFigures {
    return { ...this.publisher.stats, connected: this.link.connected, server: this.link.server };
  }

  /** NATS carries the stream itself: every frame of rung 0, whatever the TCP viewers' rungs. */
  chooseRung(): number {
    return 0;
  }

  offer(delivery: Delivery<OutgoingFrame>): void {
    let outcome: 'published' | 'dropped' = 'dropped';
    if (!this.closed) {
      try {
        outcome = this.publisher.publishFrame(delivery.frame.prepared);
      } catch (error) {
        this.failed(error);
      }
    }
    // The bytes are in the NATS client's buffer (or dropped): nothing here reads the frame any more.
    delivery.settle(outcome === 'published');
  }

  /** Leaves the broadcast, stops announcing and closes the connection (flushing what was published). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.options.broadcast.delete(this);
    this.stopListening();
    await this.publisher.close();
    await this.link.close();
  }

  private failed(error: unknown): void {
    const kind = error instanceof PayloadTooLargeError ? 'too-large' : error instanceof NatsTransportError ? error.code : 'other';
    const now = performance.now();
    const last = this.lastFailureLog.get(kind);
    if (last !== undefined && now - last < FAILURE_LOG_INTERVAL_MS) {
      this.failuresSinceLog.set(kind, (this.failuresSinceLog.get(kind) ?? 0) + 1);
      return;
    }
    const more = this.failuresSinceLog.get(kind) ?? 0;
    this.lastFailureLog.set(kind, now);
    this.failuresSinceLog.set(kind, 0);
    this.options.log(`NATS: frame not published: ${(error as Error).message}${more ? ` (and ${more} more since the last such line)` : ''}`);
  }
}
