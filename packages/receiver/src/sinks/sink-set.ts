import type { FrameMeta, FrameSink, RawImage } from '@camstream/media';
import type { StreamDescription } from '@camstream/protocol';

/**
 * The sinks every shown frame goes to: those opened for the stream (a window, a recorder), which
 * follow its size, and those that last the whole run across reconnects (the browser viewer).
 */
export class SinkSet {
  private sinks: FrameSink[] = [];
  private openedFor: string | undefined;
  private opening: Promise<void> = Promise.resolve();

  constructor(
    private readonly openSinks: (stream: StreamDescription) => Promise<FrameSink[]>,
    private readonly lasting: readonly FrameSink[],
    /** Sinks that could not be opened: the run cannot do what was asked. */
    private readonly onOpenFailed: (error: Error) => void,
  ) {}

  /** Opens the sinks for `stream`, unless they are open for its size already; a new size gets new ones. */
  openFor(stream: StreamDescription): void {
    const key = `${stream.width}x${stream.height}`;
    if (this.openedFor === key) return;
    this.openedFor = key;
    void closeAll(this.sinks);
    this.sinks = [];
    this.opening = this.openSinks(stream).then(
      (opened) => {
        this.sinks = opened;
      },
      (error: Error) => this.onOpenFailed(error),
    );
  }

  /** Resolves once the sinks for the current stream are open (or failed to open). */
  ready(): Promise<void> {
    return this.opening;
  }

  /** Hands `image` to every sink at once; resolves when all took it, rejects with the first failure. */
  async write(image: RawImage, meta: FrameMeta): Promise<void> {
    const writes = await Promise.allSettled([...this.sinks, ...this.lasting].map((sink) => sink.write(image, meta)));
    const failed = writes.find((w): w is PromiseRejectedResult => w.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** Whether some sink reads images after its write settled: their buffers must then never be reused. */
  get keepsImages(): boolean {
    return this.sinks.some((s) => s.keepsImages) || this.lasting.some((s) => s.keepsImages);
  }

  /** Closes the stream's sinks (the lasting ones belong to the caller). */
  async close(): Promise<void> {
    await this.opening;
    await closeAll(this.sinks);
    this.sinks = [];
  }
}

function closeAll(sinks: readonly FrameSink[]): Promise<unknown> {
  return Promise.allSettled(sinks.map((s) => s.close()));
}
