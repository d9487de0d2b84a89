import { percentile, SampleWindow } from './latency';

describe('percentile', () => {
  it('uses the nearest rank', () => {
    const samples = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted
    expect(percentile(samples, 50)).toBe(50);
    expect(percentile(samples, 99)).toBe(99);
    expect(percentile(samples, 100)).toBe(100);
    expect(percentile([7], 95)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });
});

describe('SampleWindow', () => {
  it('keeps only the most recent samples', () => {
    const window = new SampleWindow(3);
    for (const v of [1, 2, 3, 4, 5]) window.add(v);
    expect([...window.values].sort()).toEqual([3, 4, 5]);
    window.clear();
    expect(window.values).toHaveLength(0);
  });
});
