import { execFile } from 'node:child_process';

/*
 * Reads a Prometheus text exposition with the reference Python client's parser
 * (prometheus_client.parser, Debian's python3-prometheus-client), so that a test checks /metrics
 * against an implementation other than the one that wrote it.
 */

export interface ParsedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface ParsedFamily {
  name: string;
  type: string;
  help: string;
  samples: ParsedSample[];
}

const PARSE_SCRIPT = `
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families
def number(v):
    return 'NaN' if math.isnan(v) else ('+Inf' if v == math.inf else ('-Inf' if v == -math.inf else v))
families = [{'name': f.name, 'type': f.type, 'help': f.documentation,
             'samples': [{'name': s.name, 'labels': s.labels, 'value': number(s.value)} for s in f.samples]}
            for f in text_string_to_metric_families(sys.stdin.read())]
print(json.dumps(families))
`;

/** Debian's Python, which has the apt-installed modules (a pyenv python3 on PATH may not). */
const PYTHON = '/usr/bin/python3';

/** Parses `text`; rejects with the parser's complaint when it is not valid exposition text. */
export function parsePrometheusText(text: string): Promise<ParsedFamily[]> {
  return new Promise((resolve, reject) => {
    const child = execFile(PYTHON, ['-c', PARSE_SCRIPT], { timeout: 20_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) {
        const missing = /No module named 'prometheus_client'/.test(stderr) ? ' (install Debian\'s python3-prometheus-client, as scripts/test.sh does)' : '';
        return reject(new Error(`the Prometheus parser refused the text${missing}: ${stderr.trim().split('\n').at(-1) ?? error.message}`));
      }
      const parsed = JSON.parse(stdout) as Array<Omit<ParsedFamily, 'samples'> & { samples: Array<Omit<ParsedSample, 'value'> & { value: number | string }> }>;
      resolve(
        parsed.map((family) => ({
          ...family,
          samples: family.samples.map((sample) => ({ ...sample, value: typeof sample.value === 'string' ? Number(sample.value.replace('+', '')) : sample.value })),
        })),
      );
    });
    child.stdin?.end(text);
  });
}
