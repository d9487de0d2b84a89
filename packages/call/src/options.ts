import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import * as z from 'zod';

export const CALL_USAGE = `Usage: camstream-call --partner HOST:PORT [options]

A two-way video call over camstream: streams this machine's camera (or the test pattern) to
the partner, and shows the partner's video with a small preview of your own in a corner, in one
window. Run it on both machines, each naming the other as its partner; either may start first
(each side retries until the other answers, and again if it goes away).

  machine A:  camstream-call --host 0.0.0.0 --port 9999 --partner B:9999
  machine B:  camstream-call --host 0.0.0.0 --port 9999 --partner A:9999

Options:
  --partner HOST:PORT  the other side's camstream-call (or any camstream sender); required
  --host ADDR          address to listen on (default 127.0.0.1; 0.0.0.0 to take a call from
                       another machine: then set a secret)
  --port N             TCP port this side streams on (default 9999; 0 picks a free one)
  --source SPEC        auto | test | camera index (0, camera:1) | video file | URL
                       (default auto: camera 0 when one exists, else the test pattern)
  --size WxH           frame size (default: the source's own; 1280x720 for the test pattern)
  --fps N              frame rate (default: the source's own; 30 for the test pattern)
  --loop               restart a video file at its end instead of ending the call
  --codec NAME         jpeg | png | raw (default jpeg)
  --quality N          JPEG quality 1-100 (default 80)
  --adapt on|off       lower the quality sent when the partner's link cannot carry it (default on)
  --display MODE       auto | on | off (default auto: a window when a display is available;
                       off: no window, stats for both directions once a second)
  --max-size WxH       refuse a partner stream wider or taller than this (default 7680x4320)
  --name TEXT          this side's name, shown to the partner (default: user@host)
  --secret TEXT        shared secret for both directions: the partner must prove it to watch,
                       and must prove it when this side watches it (HMAC; the secret never
                       crosses the network). Default: the CAMSTREAM_SECRET environment variable
  --tls-cert FILE      stream over TLS with this certificate chain (PEM)...
  --tls-key FILE       ...and this private key (PEM)
  --tls                watch the partner over TLS, trusting the system's CAs...
  --tls-ca FILE        ...or this CA certificate (PEM); implies --tls
  --tls-fingerprint F  ...or exactly the certificate with this SHA-256 fingerprint; implies --tls
  --duration S         end the call after S seconds (for scripts)
  --stats-json         print stats as JSON objects (one per direction per second)
  --quiet              no per-second stats, only the summary and errors
  -h, --help           show this help

In the window: q or Esc ends the call (both directions); so does closing the window.
`;

export class UsageError extends Error {}

const NUMERIC_OPTIONS = new Set(['--port', '--fps', '--quality', '--duration']);

const wholeNumber = (min: number, max: number) =>
  z
    .string()
    .regex(/^-?\d+$/, 'expected a whole number')
    .transform(Number)
    .refine((n) => n >= min && n <= max, `must be between ${min} and ${max}`);

const size = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,5}x\d{1,5}$/, 'expected WIDTHxHEIGHT, e.g. 1280x720')
    .transform((s) => s.split('x').map(Number) as [number, number])
    .refine(([w, h]) => w >= min && h >= min && w <= max && h <= max, `each side must be ${min}..${max}`);

const callOptionsSchema = z.object({
  partner: z.string({ error: "required: the other side's HOST:PORT, e.g. --partner 192.168.1.20:9999" }).regex(/^(\[[^\]]+\]|[^:\s]+):\d{1,5}$/, 'expected HOST:PORT, e.g. 192.168.1.20:9999'),
  host: z.string().min(1),
  port: wholeNumber(0, 65535),
  source: z.string().min(1),
  size: size(16, 16384).optional(),
  fps: wholeNumber(0, 1000).optional(),
  codec: z.enum(['jpeg', 'png', 'raw']),
  quality: wholeNumber(1, 100),
  adapt: z.enum(['on', 'off'], { error: 'expected on or off' }),
  display: z.enum(['auto', 'on', 'off']),
  'max-size': size(1, 16384),
  name: z.string().min(1).max(200),
  secret: z.string().min(8, 'use at least 8 characters').max(1024).optional(),
  'tls-cert': z.string().min(1).optional(),
  'tls-key': z.string().min(1).optional(),
  tls: z.boolean(),
  'tls-ca': z.string().min(1).optional(),
  'tls-fingerprint': z
    .string()
    .regex(/^([0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$/, 'expected a SHA-256 fingerprint: 64 hex digits, colons allowed')
    .optional(),
  duration: z
    .string()
    .regex(/^-?\d+(\.\d+)?$/, 'expected a number of seconds')
    .transform(Number)
    .refine((n) => n > 0, 'must be more than 0')
    .optional(),
  'stats-json': z.boolean(),
  quiet: z.boolean(),
  loop: z.boolean(),
});

export interface CallCliOptions {
  partner: { host: string; port: number };
  host: string;
  port: number;
  source: string;
  width: number | undefined;
  height: number | undefined;
  fps: number | undefined;
  /** Restart a video file at its end. */
  loop: boolean;
  encoding: 'raw-bgr' | 'jpeg' | 'png';
  quality: number;
  adapt: boolean;
  display: 'auto' | 'on' | 'off';
  maxSize: { width: number; height: number };
  name: string;
  secret: string | undefined;
  /** This side's server: its certificate and key files. */
  tls: { certFile: string; keyFile: string } | undefined;
  /** How to trust the partner's TLS server, when it uses TLS. */
  partnerTls: { caFile?: string; fingerprint256?: string } | undefined;
  durationS: number | undefined;
  statsJson: boolean;
  quiet: boolean;
}

/** Parses argv; returns 'help' for --help, throws UsageError naming the bad option. */
export function parseCallArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): CallCliOptions | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: joinNegativeNumbers(argv, NUMERIC_OPTIONS),
      strict: true,
      allowPositionals: false,
      options: {
        partner: { type: 'string' },
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string', default: '9999' },
        source: { type: 'string', default: 'auto' },
        size: { type: 'string' },
        fps: { type: 'string' },
        codec: { type: 'string', default: 'jpeg' },
        quality: { type: 'string', default: '80' },
        adapt: { type: 'string', default: 'on' },
        display: { type: 'string', default: 'auto' },
        'max-size': { type: 'string', default: '7680x4320' },
        name: { type: 'string', default: `${process.env.USER ?? 'caller'}@${hostname()}`.slice(0, 200) },
        secret: { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        tls: { type: 'boolean', default: false },
        'tls-ca': { type: 'string' },
        'tls-fingerprint': { type: 'string' },
        duration: { type: 'string' },
        'stats-json': { type: 'boolean', default: false },
        quiet: { type: 'boolean', default: false },
        loop: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return 'help';
  const { help: _help, ...given } = values;
  const raw = { ...given, secret: given.secret ?? (env.CAMSTREAM_SECRET || undefined) };
  const parsed = callOptionsSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const option = String(issue.path[0]);
    // Never echo a secret back into a terminal or a log.
    const value = (raw as Record<string, unknown>)[option];
    const shown = option === 'secret' ? '(value hidden)' : value === undefined ? '' : `${JSON.stringify(value)}`;
    throw new UsageError(`--${option}${shown ? ` ${shown}` : ''}: ${issue.message}`, { cause: parsed.error });
  }
  const o = parsed.data;
  if (Boolean(o['tls-cert']) !== Boolean(o['tls-key'])) throw new UsageError('--tls-cert and --tls-key go together: give both or neither');
  if (o['tls-ca'] && o['tls-fingerprint']) throw new UsageError('--tls-ca and --tls-fingerprint are two ways to trust the partner: give one');
  const colon = o.partner.lastIndexOf(':');
  const partnerHost = o.partner.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const partnerPort = Number(o.partner.slice(colon + 1));
  if (partnerPort < 1 || partnerPort > 65535) throw new UsageError(`--partner ${JSON.stringify(o.partner)}: the port must be between 1 and 65535`);
  const partnerTls = o.tls || Boolean(o['tls-ca']) || Boolean(o['tls-fingerprint']);
  return {
    partner: { host: partnerHost, port: partnerPort },
    host: o.host,
    port: o.port,
    source: o.source,
    width: o.size?.[0],
    height: o.size?.[1],
    fps: o.fps,
    loop: o.loop,
    encoding: o.codec === 'raw' ? 'raw-bgr' : o.codec,
    quality: o.quality,
    adapt: o.adapt === 'on',
    display: o.display,
    maxSize: { width: o['max-size'][0], height: o['max-size'][1] },
    name: o.name,
    secret: o.secret,
    tls: o['tls-cert'] && o['tls-key'] ? { certFile: o['tls-cert'], keyFile: o['tls-key'] } : undefined,
    partnerTls: partnerTls ? { ...(o['tls-ca'] ? { caFile: o['tls-ca'] } : {}), ...(o['tls-fingerprint'] ? { fingerprint256: o['tls-fingerprint'] } : {}) } : undefined,
    durationS: o.duration,
    statsJson: o['stats-json'],
    quiet: o.quiet,
  };
}

/** `--fps -1` would read as an option named -1: join it (`--fps=-1`) so the range is what is reported. */
function joinNegativeNumbers(argv: readonly string[], numericOptions: ReadonlySet<string>): string[] {
  const joined: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return [...joined, ...argv.slice(i)];
    const next = argv[i + 1];
    if (numericOptions.has(arg) && next !== undefined && /^-\d/.test(next)) {
      joined.push(`${arg}=${next}`);
      i++;
    } else {
      joined.push(arg);
    }
  }
  return joined;
}
