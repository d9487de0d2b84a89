import { DecodePipeline } from './decode-pipeline';

/** Decodes that finish when the test says so, in any order. */
class ManualStages {
  readonly gates = new Map<number, () => void>();
  readonly started: number[] = [];
  readonly accepted: number[] = [];
  readonly skipped: number[] = [];
  readonly discarded: number[] = [];
  readonly released: string[] = [];
  readonly shown: string[] = [];
  readonly errors: Array<[string, string]> = [];
  showGate: Promise<void> | undefined;
  failing = new Set<number>();

  decode = (n: number): Promise<string> => {
    this.started.push(n);
    return new Promise((resolve, reject) => {
      this.gates.set(n, () => (this.failing.has(n) ? reject(new Error(`bad frame ${n}`)) : resolve(`image ${n}`)));
    });
  };


  show = async (image: string): Promise<void> => {
    await this.showGate;
    if (image === 'image 99') throw new Error('sink broke');
    this.shown.push(image);
  };

  onError = (err: unknown, stage: 'decode' | 'show'): void => void this.errors.push([stage, (err as Error).message]);

  finish(n: number): Promise<void> {
    this.gates.get(n)!();
    return flush();
  }

  pipeline(concurrency: number): DecodePipeline<number, string> {
    return new DecodePipeline(
      {
        decode: this.decode,
        accepted: (n) => void this.accepted.push(n),
        skipped: (n) => void this.skipped.push(n),
        discarded: (n) => void this.discarded.push(n),
        show: this.show,
        release: (image) => void this.released.push(image),
        onError: this.onError,
      },
      concurrency,
    );
  }
}

function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe('DecodePipeline', () => {
  it('decodes as many at once as allowed, keeps one waiting per decoder, the newest ones', async () => {
    const stages = new ManualStages();
    const pipeline = stages.pipeline(2);
    for (const n of [1, 2, 3, 4, 5, 6]) pipeline.offer(n);
    expect(stages.started).toEqual([1, 2]);
    expect(stages.skipped).toEqual([3, 4]); // gave way to 5 and 6
    expect(stages.discarded).toEqual([3, 4]); // never decoded: what they hold can go
    await stages.finish(1);
    expect(stages.started).toEqual([1, 2, 5]);
    await stages.finish(2);
    expect(stages.started).toEqual([1, 2, 5, 6]);
    await stages.finish(5);
    await stages.finish(6);
    await pipeline.idle();
    expect(stages.shown).toEqual(['image 1', 'image 2', 'image 5', 'image 6']);
    expect(stages.accepted).toEqual([1, 2, 5, 6]);
    expect(pipeline.skipped).toBe(2);
  });

  it('hands decodes on in arrival order: one that finishes early waits for the older one', async () => {
    const stages = new ManualStages();
    const pipeline = stages.pipeline(2);
    pipeline.offer(1);
    pipeline.offer(2);
    await stages.finish(2);
    expect(stages.accepted).toEqual([]);
    pipeline.offer(3); // a slot is still taken by 2, which waits for 1: 3 waits too
    expect(stages.started).toEqual([1, 2]);
    await stages.finish(1);
    expect(stages.accepted).toEqual([1, 2]);
    expect(stages.started).toEqual([1, 2, 3]);
    await stages.finish(3);
    await pipeline.idle();
    expect(stages.shown).toEqual(['image 1', 'image 2', 'image 3']);
    expect(pipeline.skipped).toBe(0);
  });

  it('a failed decode does not hold back the newer ones', async () => {
    const stages = new ManualStages();
    stages.failing.add(1);
    const pipeline = stages.pipeline(2);
    pipeline.offer(1);
    pipeline.offer(2);
    await stages.finish(2);
    await stages.finish(1);
    await pipeline.idle();
    expect(stages.errors).toEqual([['decode', 'bad frame 1']]);
    expect(stages.shown).toEqual(['image 2']);
    expect(pipeline.skipped).toBe(0);
  });

  it('while a frame is being shown, a newer decoded frame replaces the one waiting to be shown', async () => {
    const stages = new ManualStages();
    let openSink!: () => void;
    stages.showGate = new Promise((resolve) => (openSink = resolve));
    const pipeline = stages.pipeline(1);
    for (const n of [1, 2, 3]) {
      pipeline.offer(n);
      await stages.finish(n);
    }
    expect(stages.shown).toEqual([]); // the sink is still opening
    openSink();
    await pipeline.idle();
    expect(stages.shown).toEqual(['image 1', 'image 3']);
    expect(stages.skipped).toEqual([2]);
    expect(stages.discarded).toEqual([]); // decoded: released instead
    expect(pipeline.skipped).toBe(1);
    expect(stages.released.sort()).toEqual(['image 1', 'image 2', 'image 3']); // each exactly once
  });

  it('reports failed decodes and failed shows by stage, and keeps going', async () => {
    const stages = new ManualStages();
    stages.failing.add(1);
    const pipeline = stages.pipeline(1);
    pipeline.offer(1);
    await stages.finish(1);
    pipeline.offer(99);
    await stages.finish(99);
    pipeline.offer(3);
    await stages.finish(3);
    await pipeline.idle();
    expect(stages.errors).toEqual([
      ['decode', 'bad frame 1'],
      ['show', 'sink broke'],
    ]);
    expect(stages.shown).toEqual(['image 3']);
    expect(stages.released).toEqual(['image 99', 'image 3']); // a failed show releases too
  });

  it('idle() waits for decodes and shows in flight', async () => {
    const stages = new ManualStages();
    const pipeline = stages.pipeline(2);
    await pipeline.idle(); // nothing offered: resolves at once
    pipeline.offer(1);
    let idle = false;
    void pipeline.idle().then(() => (idle = true));
    await flush();
    expect(idle).toBe(false);
    await stages.finish(1);
    await flush();
    expect(idle).toBe(true);
    expect(() => stages.pipeline(0)).toThrow(/decode concurrency must be a positive integer, got 0/);
  });
});
