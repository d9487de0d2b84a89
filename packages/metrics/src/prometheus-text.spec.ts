import { parsePrometheusText } from '@camstream/testkit';
import { Histogram, PrometheusText } from './index';

describe('PrometheusText', () => {
  it('writes each family once, its samples together, whatever order they were added in', () => {
    const text = new PrometheusText()
      .counter('frames_total', 'Frames received.', 10, { camera: 'a' })
      .gauge('fps', 'Frames per second.', 29.5, { camera: 'a' })
      .counter('frames_total', 'Frames received.', 20, { camera: 'b' })
      .toString();
    expect(text).toBe(
      [
        '# HELP frames_total Frames received.',
        '# TYPE frames_total counter',
        'frames_total{camera="a"} 10',
        'frames_total{camera="b"} 20',
        '# HELP fps Frames per second.',
        '# TYPE fps gauge',
        'fps{camera="a"} 29.5',
        '',
      ].join('\n'),
    );
  });

  it('escapes label values and help texts, so a camera name cannot break the format', async () => {
    const name = 'back "yard"\\\nnorth';
    const text = new PrometheusText().gauge('up', 'One line\\two\nlines.', 1, { camera: name }).toString();
    expect(text).toContain('up{camera="back \\"yard\\"\\\\\\nnorth"} 1');
    expect(text).toContain('# HELP up One line\\\\two\\nlines.');
    const [family] = await parsePrometheusText(text);
    expect(family!.samples[0]!.labels['camera']).toBe(name);
    expect(family!.help).toBe('One line\\two\nlines.');
  });

  it('writes histograms as cumulative buckets with le, +Inf, _sum and _count', async () => {
    const histogram = new Histogram([0.01, 0.05, 0.1]);
    for (const value of [0.002, 0.02, 0.03, 0.07, 3]) histogram.observe(value);
    const text = new PrometheusText().histogram('latency_seconds', 'Latency.', histogram.snapshot(), { camera: 'a' }).toString();
    expect(text.split('\n').slice(2, 8)).toEqual([
      'latency_seconds_bucket{camera="a",le="0.01"} 1',
      'latency_seconds_bucket{camera="a",le="0.05"} 3',
      'latency_seconds_bucket{camera="a",le="0.1"} 4',
      'latency_seconds_bucket{camera="a",le="+Inf"} 5',
      'latency_seconds_sum{camera="a"} 3.122',
      'latency_seconds_count{camera="a"} 5',
    ]);
    const [family] = await parsePrometheusText(text);
    expect(family).toMatchObject({ name: 'latency_seconds', type: 'histogram' });
    expect(family!.samples.find((s) => s.labels['le'] === '+Inf')!.value).toBe(5);
  });

  it('writes special values as the format spells them', () => {
    const text = new PrometheusText().gauge('a', 'a', NaN).gauge('b', 'b', Infinity).gauge('c', 'c', -Infinity).toString();
    expect(text).toMatch(/^a NaN$/m);
    expect(text).toMatch(/^b \+Inf$/m);
    expect(text).toMatch(/^c -Inf$/m);
  });

  it('refuses names the format cannot carry, and one name used as two types', () => {
    const text = new PrometheusText();
    expect(() => text.gauge('frames-per-second', 'x', 1)).toThrow('"frames-per-second" is not a valid Prometheus metric name');
    expect(() => text.gauge('fps', 'x', 1, { 'camera name': 'a' })).toThrow('"camera name" is not a valid Prometheus label name');
    expect(() => text.counter('frames', 'x', 1)).toThrow('counter frames must end in _total');
    text.gauge('x_total', 'x', 1);
    expect(() => text.counter('x_total', 'x', 1)).toThrow('metric x_total is a gauge, not a counter');
  });
});

describe('Histogram', () => {
  it('counts each observation in the first bucket whose bound it does not exceed', () => {
    const histogram = new Histogram([1, 2]);
    [0.5, 1, 1.5, 2, 2.5].forEach((v) => histogram.observe(v));
    expect(histogram.snapshot()).toEqual({ buckets: [{ le: 1, count: 2 }, { le: 2, count: 4 }], sum: 7.5, count: 5 });
  });

  it('refuses bounds that do not increase', () => {
    expect(() => new Histogram([])).toThrow('at least one bucket bound');
    expect(() => new Histogram([1, 1])).toThrow('bucket bounds must increase: 1 then 1');
    expect(() => new Histogram([1, Infinity])).toThrow('must be finite');
  });
});
