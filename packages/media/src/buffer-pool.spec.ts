import { BufferPool } from './buffer-pool';

describe('BufferPool', () => {
  it('hands back a given buffer instead of allocating', () => {
    const pool = new BufferPool(2);
    const first = pool.take(100);
    expect(first.length).toBe(100);
    pool.give(first);
    expect(pool.take(100)).toBe(first);
    expect(pool.take(100)).not.toBe(first);
  });

  it('keeps at most its capacity, never the same buffer twice, and only the current size', () => {
    const pool = new BufferPool(2);
    const [a, b, c] = [pool.take(10), pool.take(10), pool.take(10)];
    pool.give(a);
    pool.give(a);
    expect(pool.available).toBe(1);
    pool.give(b);
    pool.give(c);
    expect(pool.available).toBe(2);
    const bigger = pool.take(20); // a new frame size drops the old buffers
    expect(pool.available).toBe(0);
    pool.give(a);
    expect(pool.available).toBe(0);
    pool.give(bigger);
    expect(pool.take(20)).toBe(bigger);
  });
});
