import type { HistogramSnapshot } from './histogram';

/*
 * The Prometheus text exposition format, version 0.0.4 (what Prometheus scrapes from /metrics):
 *   # HELP name text
 *   # TYPE name counter|gauge|histogram
 *   name{label="value",...} 123
 * Every family's samples stand together under its HELP and TYPE lines, whatever order they were
 * added in (a receiver adds them camera by camera). Names and label names are checked, label
 * values and help texts escaped, so that what a camera is called can never break the format.
 */

/** The Content-Type of the text format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export type MetricType = 'counter' | 'gauge' | 'histogram';
export type Labels = Readonly<Record<string, string | number>>;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

interface Family {
  type: MetricType;
  help: string;
  lines: string[];
}

/** A number as the format writes it: integers plainly, others in full precision, +Inf, -Inf, NaN. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function labelText(labels: Labels | undefined, extra?: [string, string]): string {
  const pairs = Object.entries(labels ?? {}).map(([name, value]): [string, string] => [name, String(value)]);
  if (extra) pairs.push(extra);
  if (pairs.length === 0) return '';
  for (const [name] of pairs) {
    if (!LABEL_NAME.test(name) || name.startsWith('__')) throw new RangeError(`${JSON.stringify(name)} is not a valid Prometheus label name`);
  }
  return `{${pairs.map(([name, value]) => `${name}="${escapeLabelValue(value)}"`).join(',')}}`;
}

/** Collects samples, grouped by family, and writes them in the text format. */
export class PrometheusText {
  private readonly families = new Map<string, Family>();

  /** A counter: a total that only goes up (its name ends in `_total`). */
  counter(name: string, help: string, value: number, labels?: Labels): this {
    if (!name.endsWith('_total')) throw new RangeError(`counter ${name} must end in _total`);
    this.family(name, 'counter', help).lines.push(`${name}${labelText(labels)} ${formatValue(value)}`);
    return this;
  }

  /** A gauge: a value that goes up and down. */
  gauge(name: string, help: string, value: number, labels?: Labels): this {
    this.family(name, 'gauge', help).lines.push(`${name}${labelText(labels)} ${formatValue(value)}`);
    return this;
  }

  /** A histogram: cumulative `_bucket` counts (with `le`), `_sum` and `_count`. */
  histogram(name: string, help: string, histogram: HistogramSnapshot, labels?: Labels): this {
    const { lines } = this.family(name, 'histogram', help);
    for (const bucket of histogram.buckets) {
      lines.push(`${name}_bucket${labelText(labels, ['le', formatValue(bucket.le)])} ${bucket.count}`);
    }
    lines.push(`${name}_bucket${labelText(labels, ['le', '+Inf'])} ${histogram.count}`);
    lines.push(`${name}_sum${labelText(labels)} ${formatValue(histogram.sum)}`);
    lines.push(`${name}_count${labelText(labels)} ${histogram.count}`);
    return this;
  }

  /** The whole exposition, ending with a newline. */
  toString(): string {
    const out: string[] = [];
    for (const [name, family] of this.families) {
      out.push(`# HELP ${name} ${escapeHelp(family.help)}`, `# TYPE ${name} ${family.type}`, ...family.lines);
    }
    return out.length ? `${out.join('\n')}\n` : '';
  }

  private family(name: string, type: MetricType, help: string): Family {
    if (!METRIC_NAME.test(name)) throw new RangeError(`${JSON.stringify(name)} is not a valid Prometheus metric name`);
    const known = this.families.get(name);
    if (known) {
      if (known.type !== type) throw new RangeError(`metric ${name} is a ${known.type}, not a ${type}`);
      return known;
    }
    const family: Family = { type, help, lines: [] };
    this.families.set(name, family);
    return family;
  }
}
