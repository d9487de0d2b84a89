import { LatestWins } from './latest-wins';

function deferred() {
  let release!: () => void;
  const promise = new Promise<void>((resolve) => (release = resolve));
  return { promise, release };
}

describe('LatestWins', () => {
  it('runs the newest item after a busy job and counts the ones it replaced', async () => {
    const gates = [deferred(), deferred()];
    const done: number[] = [];
    let call = 0;
    const worker = new LatestWins<number>(async (n) => {
      await gates[call++]?.promise;
      done.push(n);
    }, fail);
    worker.offer(1); // starts
    worker.offer(2); // waits
    worker.offer(3); // replaces 2
    worker.offer(4); // replaces 3
    gates[0]!.release();
    gates[1]!.release();
    await worker.idle();
    expect(done).toEqual([1, 4]);
    expect(worker.skipped).toBe(2);
  });

  it('reports a failing job and keeps going', async () => {
    const errors: unknown[] = [];
    const done: number[] = [];
    const worker = new LatestWins<number>(async (n) => {
      if (n === 1) throw new Error('bad frame');
      done.push(n);
    }, (e) => errors.push(e));
    worker.offer(1);
    await worker.idle();
    worker.offer(2);
    await worker.idle();
    expect(done).toEqual([2]);
    expect(errors).toHaveLength(1);
  });
});

function fail(err: unknown): never {
  throw err;
}
