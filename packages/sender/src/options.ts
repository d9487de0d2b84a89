import { parseArgs } from 'node:util';
import * as z from 'zod';

export const SENDER_USAGE = `Usage: camstream-sender [options]

Captures live video with OpenCV and streams it over TCP to any number of receivers.

Options:
  --wire NAME          camstream (default) | tutorial. tutorial: speak the Python tutorial's
                       wire instead (each frame an 8-byte length and a pickle of the numpy
                       array, raw BGR) to its receiver script, or to camstream-receiver
                       --wire tutorial. One wire per sender process. That wire has no
                       authentication, TLS, compression, quality rungs or names: --secret,
                       --tls-*, --codec, --quality, --bitrate, --crf, --keyframe-interval,
                       --adapt, --name and --nats do not apply
  --host ADDR          address to listen on (default 127.0.0.1; 0.0.0.0 for all interfaces)
  --port N             TCP port (default 9999; 0 picks a free one)
  --source SPEC        auto | test | camera index (0, camera:1) | video file | URL
                       (default auto: camera 0 when one exists, else the test pattern)
  --size WxH           frame size (default: the source's own; 1280x720 for the test pattern)
  --fps N              frame rate (default: the source's own; 30 for the test pattern;
                       0 = as fast as the source allows)
  --codec NAME         jpeg | png | raw | h264 (default jpeg)
  --quality N          JPEG quality 1-100 (default 80)
  --bitrate RATE       H.264: bits per second of the stream, e.g. 4M, 2500k, 800000
                       (default 0.145 bit per pixel per frame: 4M at 1280x720 30 fps);
                       receivers on slow links get 60 %, 35 % or 20 % of it
  --crf N              H.264: constant quality 0-51 (lower is better) instead of an average
                       bitrate, each rung capped at its bitrate (default: average bitrate)
  --keyframe-interval S  H.264: seconds between keyframes (default 2): how long a receiver
                       that fell behind waits for a picture again
  --max-viewers N      receivers served at once (default 16)
  --adapt on|off       move each receiver down to a lower JPEG quality or size when its
                       link cannot carry the stream, and back up when it can (default on;
                       off: every receiver gets the stream itself, a slow one fewer frames).
                       Raw and PNG streams have no lower rungs: they can only drop frames
  --loop               restart a video file at its end instead of ending the stream
  --preview            show what is sent in a local window ("TRANSMITTING VIDEO")
  --name TEXT          this sender's name, shown to receivers (sent in its hello)
  --secret TEXT        require receivers to prove they know this shared secret
                       (HMAC challenge-response; the secret never crosses the network).
                       Default: the CAMSTREAM_SECRET environment variable, which keeps it
                       out of process listings
  --tls-cert FILE      serve over TLS with this certificate chain (PEM)...
  --tls-key FILE       ...and this private key (PEM)
  --nats URL           also publish every frame once to NATS (alongside TCP), for any number
                       of subscribers: nats://[USER:PASS@]HOST[:PORT] or tls://..., several
                       servers of a cluster separated by commas; needs --camera. Credentials
                       may come from NATS_USER/NATS_PASSWORD or NATS_TOKEN too. With a shared
                       secret (CAMSTREAM_SECRET), every message is signed
  --camera NAME        the camera's name on NATS (1-64 letters, digits, - or _)
  --nats-creds FILE    NATS creds file (JWT and nkey seed; default $NATS_CREDS)
  --nats-ca FILE       CA certificate (PEM) of the NATS server, for tls:// (default $NATS_CA)
  --metrics PORT       serve Prometheus metrics at http://HOST:PORT/metrics (HOST is --host)
  --stats-json         print stats as one JSON object per line instead of text
  --quiet              no stats lines, only errors
  -h, --help           show this help
`;

export class UsageError extends Error {}

/** Options that take a number (or numbers): a negative one gets the range message. */
const NUMERIC_OPTIONS = new Set(['--port', '--size', '--fps', '--quality', '--max-viewers', '--bitrate', '--crf', '--keyframe-interval', '--metrics']);

const sizeSchema = z
  .string()
  .regex(/^\d{1,5}x\d{1,5}$/, 'expected WIDTHxHEIGHT, e.g. 1280x720')
  .transform((s) => s.split('x').map(Number) as [number, number])
  .refine(([w, h]) => w >= 16 && h >= 16 && w <= 16384 && h <= 16384, 'each side must be 16..16384');

// A minus sign passes the pattern so that -1 is told the range, like any other number outside it.
const intIn = (min: number, max: number) =>
  z
    .string()
    .regex(/^-?\d+$/, 'expected a whole number')
    .transform(Number)
    .refine((n) => n >= min && n <= max, `must be between ${min} and ${max}`);

/** "4M", "2.5M", "2500k", "800000" (bits per second). */
const bitrateSchema = z
  .string()
  .regex(/^-?\d+(\.\d+)?[kKmM]?$/, 'expected bits per second, e.g. 4M, 2500k or 800000')
  .transform((text) => {
    const unit = text.at(-1)!.toLowerCase();
    const scale = unit === 'k' ? 1e3 : unit === 'm' ? 1e6 : 1;
    return Math.round(parseFloat(text) * scale);
  })
  .refine((bits) => bits >= 100_000 && bits <= 1_000_000_000, 'must be between 100k and 1000M bits per second');

const senderOptionsSchema = z.object({
  wire: z.enum(['camstream', 'tutorial'], { error: 'expected camstream or tutorial' }),
  host: z.string().min(1),
  port: intIn(0, 65535),
  source: z.string().min(1),
  size: sizeSchema.optional(),
  fps: intIn(0, 1000).optional(),
  codec: z.enum(['jpeg', 'png', 'raw', 'h264']),
  quality: intIn(1, 100),
  bitrate: bitrateSchema.optional(),
  crf: intIn(0, 51).optional(),
  'keyframe-interval': z
    .string()
    .regex(/^-?\d+(\.\d+)?$/, 'expected a number of seconds')
    .transform(Number)
    .refine((n) => n >= 0.1 && n <= 60, 'must be between 0.1 and 60 seconds')
    .optional(),
  'max-viewers': intIn(1, 10000),
  adapt: z.enum(['on', 'off'], { error: 'expected on or off' }),
  loop: z.boolean(),
  preview: z.boolean(),
  name: z.string().max(200).optional(),
  secret: z.string().min(8, 'use at least 8 characters').max(1024).optional(),
  'tls-cert': z.string().min(1).optional(),
  'tls-key': z.string().min(1).optional(),
  'stats-json': z.boolean(),
  quiet: z.boolean(),
  nats: z.string().min(1).optional(),
  camera: z.string().optional(),
  'nats-creds': z.string().min(1).optional(),
  'nats-ca': z.string().min(1).optional(),
  metrics: intIn(0, 65535).optional(),
});

export interface SenderOptions {
  /** camstream: the camstream protocol; tutorial: the tutorial's pickles (TutorialServer). */
  wire: 'camstream' | 'tutorial';
  host: string;
  port: number;
  source: string;
  /** Undefined: whatever the source delivers. */
  width: number | undefined;
  height: number | undefined;
  fps: number | undefined;
  encoding: 'raw-bgr' | 'jpeg' | 'png' | 'h264';
  quality: number;
  /** H.264 only: rung 0's bits per second (undefined: the default for the stream's size and rate). */
  bitrate: number | undefined;
  /** H.264 only: constant quality instead of an average bitrate. */
  crf: number | undefined;
  /** H.264 only: seconds between keyframes. */
  keyframeIntervalSeconds: number;
  maxViewers: number;
  /** Quality rungs per receiver (JPEG); false: rung 0 only. */
  adapt: boolean;
  loop: boolean;
  preview: boolean;
  name: string | undefined;
  secret: string | undefined;
  tls: { certFile: string; keyFile: string } | undefined;
  statsJson: boolean;
  quiet: boolean;
  /** Publish to NATS too (the camera name is checked by the app, with @camstream/nats's rules). */
  nats: { url: string; camera: string; credsFile: string | undefined; caFile: string | undefined } | undefined;
  /** Port of the /metrics server, if asked for. */
  metricsPort: number | undefined;
}

/** Parses argv; returns 'help' for --help, throws UsageError naming the bad option. */
export function parseSenderArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): SenderOptions | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: joinNegativeNumbers(argv, NUMERIC_OPTIONS),
      strict: true,
      allowPositionals: false,
      options: {
        wire: { type: 'string', default: 'camstream' },
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string', default: '9999' },
        source: { type: 'string', default: 'auto' },
        size: { type: 'string' },
        fps: { type: 'string' },
        // No defaults here for what the tutorial wire refuses: given or not must be told apart.
        codec: { type: 'string' },
        quality: { type: 'string' },
        bitrate: { type: 'string' },
        crf: { type: 'string' },
        'keyframe-interval': { type: 'string' },
        'max-viewers': { type: 'string', default: '16' },
        adapt: { type: 'string' },
        loop: { type: 'boolean', default: false },
        preview: { type: 'boolean', default: false },
        name: { type: 'string' },
        secret: { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'stats-json': { type: 'boolean', default: false },
        quiet: { type: 'boolean', default: false },
        nats: { type: 'string' },
        camera: { type: 'string' },
        'nats-creds': { type: 'string' },
        'nats-ca': { type: 'string' },
        metrics: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return 'help';
  const { help: _help, ...given } = values;
  if (given.wire === 'tutorial') {
    const notOnTutorialWire = (['codec', 'quality', 'bitrate', 'crf', 'keyframe-interval', 'adapt', 'name', 'secret', 'tls-cert', 'tls-key', 'nats', 'camera', 'nats-creds', 'nats-ca'] as const).filter((o) => given[o] !== undefined);
    if (notOnTutorialWire.length > 0) {
      const listed = notOnTutorialWire.map((o) => `--${o}`).join(', ');
      throw new UsageError(`${listed}: not on the tutorial wire, which carries raw BGR pickles with no authentication, TLS, quality rungs, names or NATS (use --wire camstream)`);
    }
  }
  const rest = {
    ...given,
    codec: given.codec ?? 'jpeg',
    quality: given.quality ?? '80',
    adapt: given.adapt ?? 'on',
    // The tutorial wire has no authentication: a secret from the environment does not apply to it (the CLI says so).
    secret: given.secret ?? (given.wire === 'tutorial' ? undefined : env.CAMSTREAM_SECRET || undefined),
  };
  const parsed = senderOptionsSchema.safeParse(rest);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const option = String(issue.path[0]);
    // Never echo a secret back into a terminal or a log.
    const shown = option === 'secret' ? '(value hidden)' : JSON.stringify((rest as Record<string, unknown>)[option]);
    throw new UsageError(`--${option} ${shown}: ${issue.message}`, { cause: parsed.error });
  }
  const o = parsed.data;
  if (Boolean(o['tls-cert']) !== Boolean(o['tls-key'])) throw new UsageError('--tls-cert and --tls-key go together: give both or neither');
  for (const option of ['bitrate', 'crf', 'keyframe-interval'] as const) {
    if (o[option] !== undefined && o.codec !== 'h264') throw new UsageError(`--${option} is for --codec h264 only (the codec is ${o.codec})`);
  }
  if (o.nats !== undefined && o.camera === undefined) throw new UsageError('--nats needs --camera NAME: the name receivers watch it by');
  if (o.nats === undefined && (o.camera !== undefined || o['nats-creds'] !== undefined || o['nats-ca'] !== undefined)) {
    throw new UsageError(`--${o.camera !== undefined ? 'camera' : o['nats-creds'] !== undefined ? 'nats-creds' : 'nats-ca'} is for publishing to NATS: give --nats URL too`);
  }
  return {
    wire: o.wire,
    host: o.host,
    port: o.port,
    source: o.source,
    width: o.size?.[0],
    height: o.size?.[1],
    fps: o.fps,
    encoding: o.codec === 'raw' ? 'raw-bgr' : o.codec,
    quality: o.quality,
    bitrate: o.bitrate,
    crf: o.crf,
    keyframeIntervalSeconds: o['keyframe-interval'] ?? 2,
    maxViewers: o['max-viewers'],
    adapt: o.adapt === 'on',
    loop: o.loop,
    preview: o.preview,
    name: o.name,
    secret: o.secret,
    tls: o['tls-cert'] && o['tls-key'] ? { certFile: o['tls-cert'], keyFile: o['tls-key'] } : undefined,
    statsJson: o['stats-json'],
    quiet: o.quiet,
    nats: o.nats === undefined ? undefined : { url: o.nats, camera: o.camera!, credsFile: o['nats-creds'], caFile: o['nats-ca'] },
    metricsPort: o.metrics,
  };
}

/**
 * node's parseArgs reads `--fps -1` as --fps followed by an option named -1 and fails with a
 * message about option syntax. A negative number right after a numeric option is joined to it
 * (`--fps=-1`), so that the option's own check says what range it takes.
 */
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
