import { RungChooser, type AdaptationOptions, type LinkEstimate } from './adaptation';
import type { Delivery, Outlet } from './fan-out';
import { LatestWinsWriter } from './latest-wins-writer';

/** The flow-control window an outlet obeys (the protocol's FlowWindow fits). */
export interface FlowGate extends LinkEstimate {
  canSend(bytes: number): boolean;
  /** How long the oldest unacknowledged frame has waited for its ack (0 when none is in flight). */
  oldestUnackedMs(now: number): number;
}

export interface AdaptiveOutletOptions<P> {
  gate: FlowGate;
  /** Bytes the frame takes on this outlet's connection (what the window counts). */
  bytesOf(frame: P): number;
  /** Writes the frame; returns false when the destination is full (call drained() once it is not). */
  send(frame: P): boolean;
  /** A frame this outlet will never send: declared to the peer with the next frame. */
  dropped?(frame: P): void;
  /** A frame that never came to this outlet (its rung's encoder made none): declared like a drop. */
  missed?(): void;
  /** Inter-coded frames: how long a frame may wait behind the one before it (LatestWinsWriter's maxChainWaitMs). */
  maxChainWaitMs?: number;
  adaptation: AdaptationOptions;
  now?(): number;
}

/**
 * What every flow-controlled destination shares (a TCP receiver at the sender, a browser tab at
 * the receiver): a latest-wins writer that sends only what the window admits, a rung chosen
 * from the link estimate and from the frames the window had to drop, and the counters. The
 * destination supplies the bytes on the wire (`send`) and calls acked() and drained().
 */
export class AdaptiveOutlet<P> implements Outlet<P> {
  private readonly writer: LatestWinsWriter<Delivery<P>>;
  private chooser: RungChooser;
  private readonly now: () => number;
  private sentCount = 0;
  private droppedCount = 0;

  constructor(private readonly options: AdaptiveOutletOptions<P>) {
    this.now = options.now ?? (() => performance.now());
    this.chooser = new RungChooser(options.adaptation, this.now());
    this.writer = new LatestWinsWriter<Delivery<P>>({
      admits: (d) => options.gate.canSend(options.bytesOf(d.frame)),
      send: (d) => {
        this.sentCount++;
        this.chooser.frameSent(this.now());
        return options.send(d.frame);
      },
      taken: (d) => d.settle(true),
      dropped: (d) => {
        this.droppedCount++;
        this.chooser.frameDropped(this.now());
        options.dropped?.(d.frame);
        d.settle(false);
      },
      // Not the link's fault: counted, declared, but no reason to change rungs.
      missed: () => {
        this.droppedCount++;
        options.missed?.();
      },
      chainOf: (d) => d.chain,
      ...(options.maxChainWaitMs === undefined ? {} : { maxChainWaitMs: options.maxChainWaitMs }),
      now: this.now,
    });
  }

  /** Frames written so far. */
  get sent(): number {
    return this.sentCount;
  }

  /** Frames dropped so far (replaced while waiting, undecodable, missed, or left when the outlet closed). */
  get dropped(): number {
    return this.droppedCount;
  }

  /** The rung of the frames it is sending now. */
  get rung(): number {
    return this.chooser.rung;
  }

  /** True while the destination has not drained since it last refused bytes. */
  get blocked(): boolean {
    return this.writer.blocked;
  }

  /** The ladder changed (a new stream): start again from rung 0. */
  reset(adaptation: AdaptationOptions): void {
    this.chooser = new RungChooser(adaptation, this.now());
  }

  chooseRung(now: number, rungBitrate: (rung: number) => number): number {
    return this.chooser.update(now, this.options.gate, rungBitrate);
  }

  offer(delivery: Delivery<P>): void {
    this.writer.offer(delivery);
  }

  /** A frame of the stream that will never come to this outlet: declared in order, like a drop. */
  missed(): void {
    this.writer.missed();
  }

  /** The rung whose frames it can go on taking without a keyframe; undefined when it needs one. */
  continuingRung(): number | undefined {
    return this.writer.chainPosition?.rung;
  }

  /** An acknowledgement arrived: the window may have room for the waiting frame. */
  acked(): void {
    this.writer.retry();
  }

  /** The destination took its buffered bytes. */
  drained(): void {
    this.writer.drained();
  }

  /** How long the peer has taken nothing: its socket refused bytes, or it acknowledged nothing. */
  stalledForMs(now = this.now()): number {
    return Math.max(this.writer.blockedForMs(now), this.options.gate.oldestUnackedMs(now));
  }

  /** No more frames; the waiting one is dropped. */
  close(): void {
    this.writer.close();
  }
}
