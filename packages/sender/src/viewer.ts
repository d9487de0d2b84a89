import type { Socket } from 'node:net';
import { encodeMessage, type FrameHeader } from '@camstream/protocol';
import type { EncodedFrame } from './encoded-frame';

/**
 * Frames that viewers hold in their waiting slot and no viewer has written yet. The pump of a
 * source without its own pace (fps 0) waits on this before capturing the next frame, so that
 * it captures and encodes as fast as the fastest viewer takes frames, not into the void.
 */
const held = new WeakMap<EncodedFrame, { holders: number; taken: Promise<void>; settle: () => void }>();
/** Frames already written to at least one viewer. */
const written = new WeakSet<EncodedFrame>();

/**
 * Resolves when `frame` has been written to some viewer's socket, or when no viewer holds it any
 * more (a newer frame replaced it, or its viewers left). At once when no viewer is holding it:
 * already written, or never offered to anyone.
 */
export function frameTaken(frame: EncodedFrame): Promise<void> {
  return held.get(frame)?.taken ?? Promise.resolve();
}

function hold(frame: EncodedFrame): void {
  if (written.has(frame)) return;
  const entry = held.get(frame);
  if (entry) {
    entry.holders++;
    return;
  }
  let settle!: () => void;
  const taken = new Promise<void>((resolve) => (settle = resolve));
  held.set(frame, { holders: 1, taken, settle });
}

/** A holder gave the frame up: it was replaced by a newer frame, or its viewer left. */
function release(frame: EncodedFrame): void {
  const entry = held.get(frame);
  if (entry && --entry.holders === 0) {
    held.delete(frame);
    entry.settle();
  }
}

function markWritten(frame: EncodedFrame): void {
  written.add(frame);
  const entry = held.get(frame);
  if (entry) {
    held.delete(frame);
    entry.settle();
  }
}

/**
 * One connected receiver after its handshake. It owns a latest-wins slot: while the socket
 * is still flushing the previous frame, a newer frame replaces the waiting one and the
 * replaced frame counts as dropped (and is declared to the receiver in the next header).
 * Memory per viewer is therefore at most one frame in flight plus one waiting, both shared
 * with every other viewer.
 */
export class Viewer {
  private flushing = false;
  /** When the socket stopped taking frames; undefined while it keeps up. */
  private flushingSince: number | undefined;
  private lastSentAt = performance.now();
  private waiting: EncodedFrame | undefined;
  private droppedCount = 0;
  private sentCount = 0;
  private bytes = 0;

  constructor(
    readonly id: number,
    readonly name: string,
    private readonly socket: Socket,
    /** The receiver's address and port, as taken when its connection was accepted. */
    readonly remote: string,
  ) {
    socket.on('drain', () => this.onDrain());
    socket.once('close', () => {
      if (this.waiting) release(this.waiting);
      this.waiting = undefined;
    });
  }

  get dropped(): number {
    return this.droppedCount;
  }

  get sent(): number {
    return this.sentCount;
  }

  get bytesSent(): number {
    return this.bytes;
  }

  /** Bytes written but not yet taken by the kernel: bounded by one frame plus its header. */
  get queuedBytes(): number {
    return this.socket.writableLength;
  }

  offer(frame: EncodedFrame): void {
    if (this.socket.destroyed || this.socket.writableEnded) return;
    if (!this.flushing) {
      this.send(frame);
      return;
    }
    if (this.waiting) {
      this.droppedCount++;
      release(this.waiting);
    }
    this.waiting = frame;
    hold(frame);
  }

  /** How long the socket has refused more bytes (0 when it keeps up): a stalled or dead viewer. */
  stalledForMs(now = performance.now()): number {
    return this.flushingSince === undefined ? 0 : now - this.flushingSince;
  }

  /** Tells an idle receiver the connection is alive, when nothing else went out for a while. */
  pingIfIdle(idleMs: number, now = performance.now()): void {
    if (this.flushing || now - this.lastSentAt < idleMs || this.socket.destroyed || this.socket.writableEnded) return;
    this.socket.write(encodeMessage({ type: 'ping', time: performance.timeOrigin + now }).head);
    this.lastSentAt = now;
  }

  private onDrain(): void {
    this.flushing = false;
    this.flushingSince = undefined;
    const next = this.waiting;
    this.waiting = undefined;
    if (next) this.send(next);
  }

  private send(frame: EncodedFrame): void {
    const header: FrameHeader = { ...frame.header, dropped: this.droppedCount };
    const { head, payload } = encodeMessage(header, frame.payload);
    markWritten(frame);
    // Two writes inside cork(): one syscall, and the shared payload is never copied.
    this.socket.cork();
    this.socket.write(head);
    const ok = this.socket.write(payload);
    this.socket.uncork();
    this.sentCount++;
    this.bytes += head.length + payload.length;
    this.lastSentAt = performance.now();
    if (!ok) {
      this.flushing = true;
      this.flushingSince = this.lastSentAt;
    }
  }
}
