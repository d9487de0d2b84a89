import { AnySizeBufferPool } from './any-size-buffer-pool';

describe('AnySizeBufferPool', () => {
  it('hands out exact-length buffers and reuses a given-back allocation for the next one of about that size', () => {
    const pool = new AnySizeBufferPool(2);
    const first = pool.take(300_000);
    expect(first.length).toBe(300_000);
    pool.give(first);
    const slightlyLarger = pool.take(310_000); // a JPEG a little larger than the last one
    expect(slightlyLarger.length).toBe(310_000);
    expect(slightlyLarger.buffer).toBe(first.buffer);
    expect(pool.allocations).toBe(1);
  });

  it('does not hand a large allocation to a much smaller request, nor a small one to a larger', () => {
    const pool = new AnySizeBufferPool(4);
    const large = pool.take(6_000_000);
    const small = pool.take(100_000);
    pool.give(large);
    pool.give(small);
    expect(pool.take(10_000).buffer).not.toBe(large.buffer);
    expect(pool.take(1_000_000).buffer).not.toBe(small.buffer);
    expect(pool.take(6_000_000).buffer).toBe(large.buffer);
    expect(pool.take(100_000).buffer).toBe(small.buffer);
  });

  it('never lends one allocation twice: a double give, or a buffer it did not lend, is ignored', () => {
    const pool = new AnySizeBufferPool(4);
    const a = pool.take(1000);
    pool.give(a);
    pool.give(a);
    pool.give(Buffer.alloc(1000));
    pool.give(Buffer.from(new ArrayBuffer(2000), 0, 1000));
    expect(pool.available).toBe(1);
    const b = pool.take(1000);
    const c = pool.take(1000);
    expect(b.buffer).toBe(a.buffer);
    expect(c.buffer).not.toBe(a.buffer);
  });

  it('keeps at most its capacity, letting the oldest go', () => {
    const pool = new AnySizeBufferPool(2);
    const [a, b, c] = [pool.take(10), pool.take(10), pool.take(10)];
    for (const buffer of [a, b, c]) pool.give(buffer);
    expect(pool.available).toBe(2);
    const taken = [pool.take(10).buffer, pool.take(10).buffer];
    expect(taken).not.toContain(a.buffer);
    expect(taken).toEqual(expect.arrayContaining([b.buffer, c.buffer]));
    expect(() => new AnySizeBufferPool(-1)).toThrow('pool capacity must be a whole number, got -1');
  });
});
