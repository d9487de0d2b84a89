import { parseArgs } from 'node:util';
import { hostname } from 'node:os';
import * as z from 'zod';

export const RECEIVER_USAGE = `Usage: camstream-receiver [options] [HOST[:PORT] ...]

Receives a camstream over TCP (or NATS), checks every frame, and shows it in a window, records
it, or just prints stats. Several senders (HOST:PORT arguments), or NATS cameras (--nats with a
list or '*'), make a hub: a mosaic window with a tile per camera, a stats line per camera, one
recording per camera and a grid in the browser.

Options:
  --wire NAME          camstream (default) | tutorial. tutorial: watch the Python tutorial's
                       streamer (or camstream-sender --wire tutorial): each frame an 8-byte
                       length and a pickle of a numpy array, decoded by a strict decoder that
                       runs nothing (a pickle that is not a numpy uint8 image is refused and
                       ends the run). That wire has no authentication, TLS, checksums,
                       sequence numbers or capture times: --secret, --tls*, --name and
                       --nats do not apply, and latency, drops and gaps show as n/a
  --host ADDR          sender address (default 127.0.0.1)
  --port N             sender port (default 9999)
  --nats URL           watch cameras on NATS: nats://[USER:PASS@]HOST[:PORT] or tls://...,
                       several servers of a cluster separated by commas (credentials may also
                       come from NATS_USER/NATS_PASSWORD or NATS_TOKEN). Without HOST:PORT
                       arguments, NATS is the only source
  --camera NAMES       with --nats: one camera, a list a,b,c, or '*' for every camera on the
                       bus (new ones appear as they announce themselves)
  --nats-creds FILE    NATS creds file (JWT and nkey seed; default $NATS_CREDS)
  --nats-ca FILE       CA certificate (PEM) of the NATS server, for tls:// (default $NATS_CA)
  --display MODE       auto | on | off (default auto: a window when a display is available)
  --record FILE        also record to a video file: .avi (Motion JPEG of the pictures shown);
                       an h264 stream into .mp4 is recorded as received, without re-encoding;
                       with several cameras, one file per camera: FILE-CAMERA.avi (out.avi ->
                       out-porch.avi), CAMERA being the NATS camera name or HOST-PORT of a TCP sender
  --http PORT          serve the stream to browsers on this port: a page with the video and
                       live stats at /, plain MJPEG at /stream.mjpg (0 picks a free port); with
                       several cameras a grid at /, and ?camera=NAME on /stream.mjpg,
                       /snapshot.jpg and /stats.json. Prometheus metrics at /metrics
  --http-host ADDR     address for --http (default 127.0.0.1; 0.0.0.0 for all interfaces)
  --frames N           exit after N frames (for scripts)
  --duration S         exit after S seconds (for scripts)
  --no-reconnect       exit when the sender is not there or goes away (default: retry with backoff)
  --max-size WxH       refuse streams wider or taller than this (default 7680x4320): decoding
                       holds width * height * 3 bytes per frame in flight
  --secret TEXT        shared secret the sender requires (default: CAMSTREAM_SECRET from the
                       environment, which keeps it out of process listings); with a secret,
                       the sender must prove it knows it too; over NATS, only frames
                       signed with it are accepted
  --tls                connect over TLS, trusting the system's CAs...
  --tls-ca FILE        ...or this CA certificate (PEM); implies --tls
  --tls-fingerprint F  ...or exactly the certificate with this SHA-256 fingerprint
                       (as printed by the sender); implies --tls
  --name TEXT          name this receiver reports to the sender (default: user@host)
  --stats-json         print stats as one JSON object per line instead of text
  --quiet              no per-second stats, only the final summary and errors
  -h, --help           show this help

Keys in the window (and the mosaic): q or Esc quits; so does closing the window.
`;

export class UsageError extends Error {}

/** Options that take a number: a negative one gets the range message. */
const NUMERIC_OPTIONS = new Set(['--port', '--http', '--frames', '--duration']);

// Minus signs pass the patterns so that -1 is told the range, like any other number outside it.
const positiveInt = z.string().regex(/^-?\d+$/, 'expected a whole number').transform(Number).refine((n) => n >= 1, 'must be at least 1');

const receiverOptionsSchema = z.object({
  wire: z.enum(['camstream', 'tutorial'], { error: 'expected camstream or tutorial' }),
  host: z.string().min(1),
  port: z
    .string()
    .regex(/^-?\d+$/, 'expected a whole number')
    .transform(Number)
    .refine((n) => n >= 1 && n <= 65535, 'must be between 1 and 65535'),
  display: z.enum(['auto', 'on', 'off']),
  record: z.string().min(1).optional(),
  http: z
    .string()
    .regex(/^-?\d+$/, 'expected a port number')
    .transform(Number)
    .refine((n) => n >= 0 && n <= 65535, 'must be between 0 and 65535')
    .optional(),
  'http-host': z.string().min(1),
  frames: positiveInt.optional(),
  duration: z
    .string()
    .regex(/^-?\d+(\.\d+)?$/, 'expected a number of seconds')
    .transform(Number)
    .refine((n) => n > 0, 'must be more than 0')
    .optional(),
  'no-reconnect': z.boolean(),
  'max-size': z
    .string()
    .regex(/^\d+x\d+$/, 'expected WIDTHxHEIGHT, e.g. 3840x2160')
    .transform((size) => {
      const [width, height] = size.split('x').map(Number) as [number, number];
      return { width, height };
    })
    .refine(({ width, height }) => width >= 1 && height >= 1 && width <= 16384 && height <= 16384, 'width and height must be 1 to 16384 (the protocol\'s limit)'),
  secret: z.string().min(8, 'use at least 8 characters').max(1024).optional(),
  tls: z.boolean(),
  'tls-ca': z.string().min(1).optional(),
  'tls-fingerprint': z
    .string()
    .regex(/^([0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$/, 'expected a SHA-256 fingerprint: 64 hex digits, colons allowed')
    .optional(),
  name: z.string().min(1).max(200),
  'stats-json': z.boolean(),
  quiet: z.boolean(),
  nats: z.string().min(1).optional(),
  camera: z.string().min(1).optional(),
  'nats-creds': z.string().min(1).optional(),
  'nats-ca': z.string().min(1).optional(),
});

const portSchema = z
  .string()
  .regex(/^-?\d+$/, 'expected a whole number')
  .transform(Number)
  .refine((n) => n >= 1 && n <= 65535, 'must be between 1 and 65535');

export interface ReceiverCliOptions {
  /** camstream: the camstream protocol; tutorial: the tutorial's pickles. */
  wire: 'camstream' | 'tutorial';
  /** The first TCP sender (or the default one), as before there could be several. */
  host: string;
  port: number;
  /** Every TCP sender to watch, one camera each (none when NATS is the only source). */
  senders: Array<{ host: string; port: number }>;
  /** Cameras on NATS: `cameras` is the --camera text (checked by the app with @camstream/nats's rules). */
  nats: { url: string; cameras: string; credsFile: string | undefined; caFile: string | undefined } | undefined;
  display: 'auto' | 'on' | 'off';
  record: string | undefined;
  /** Port of the browser viewer, if one was asked for. */
  httpPort: number | undefined;
  httpHost: string;
  frames: number | undefined;
  durationS: number | undefined;
  reconnect: boolean;
  /** The largest stream to accept. */
  maxSize: { width: number; height: number };
  secret: string | undefined;
  tls: { caFile?: string; fingerprint256?: string } | undefined;
  name: string;
  statsJson: boolean;
  quiet: boolean;
}

export function parseReceiverArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): ReceiverCliOptions | 'help' {
  let parsedArgs;
  try {
    parsedArgs = parseArgs({
      args: joinNegativeNumbers(argv, NUMERIC_OPTIONS),
      strict: true,
      allowPositionals: true,
      options: {
        wire: { type: 'string', default: 'camstream' },
        host: { type: 'string' },
        port: { type: 'string' },
        display: { type: 'string', default: 'auto' },
        record: { type: 'string' },
        http: { type: 'string' },
        'http-host': { type: 'string', default: '127.0.0.1' },
        frames: { type: 'string' },
        duration: { type: 'string' },
        'no-reconnect': { type: 'boolean', default: false },
        'max-size': { type: 'string', default: '7680x4320' },
        secret: { type: 'string' },
        tls: { type: 'boolean', default: false },
        'tls-ca': { type: 'string' },
        'tls-fingerprint': { type: 'string' },
        // No default here: --name is refused on the tutorial wire, so given or not must be told apart.
        name: { type: 'string' },
        'stats-json': { type: 'boolean', default: false },
        quiet: { type: 'boolean', default: false },
        nats: { type: 'string' },
        camera: { type: 'string' },
        'nats-creds': { type: 'string' },
        'nats-ca': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsedArgs;
  if (values.help) return 'help';
  if (positionals.length > 1 && (values.host !== undefined || values.port !== undefined)) {
    throw new UsageError(`--host and --port name one sender; give several as HOST:PORT arguments (got ${positionals.join(' ')})`);
  }
  const target = positionals[0] ? splitHostPort(positionals[0]) : {};
  const { help: _help, ...rest } = values;
  const tutorialWire = values.wire === 'tutorial';
  if (tutorialWire) {
    const notOnTutorialWire = (['secret', 'tls', 'tls-ca', 'tls-fingerprint', 'name', 'nats', 'camera', 'nats-creds', 'nats-ca'] as const).filter(
      (o) => values[o] !== undefined && values[o] !== false,
    );
    if (notOnTutorialWire.length > 0) {
      const listed = notOnTutorialWire.map((o) => `--${o}`).join(', ');
      throw new UsageError(`${listed}: not on the tutorial wire, which has no handshake, authentication, TLS or NATS (use --wire camstream)`);
    }
  }
  const raw = {
    ...rest,
    host: values.host ?? target.host ?? '127.0.0.1',
    port: values.port ?? target.port ?? '9999',
    name: values.name ?? defaultName(),
    // The tutorial wire has no authentication: a secret from the environment does not apply to it.
    secret: values.secret ?? (tutorialWire ? undefined : env.CAMSTREAM_SECRET || undefined),
  };
  const parsed = receiverOptionsSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const option = String(issue.path[0]);
    // Never echo a secret back into a terminal or a log.
    const shown = option === 'secret' ? '(value hidden)' : JSON.stringify((raw as Record<string, unknown>)[option]);
    throw new UsageError(`--${option} ${shown}: ${issue.message}`, { cause: parsed.error });
  }
  const o = parsed.data;
  if (o['tls-ca'] && o['tls-fingerprint']) throw new UsageError('--tls-ca and --tls-fingerprint are two ways to trust the sender: give one');
  if (o.nats !== undefined && o.camera === undefined) throw new UsageError("--nats needs --camera: a camera's name, a list a,b,c, or '*' for every camera");
  if (o.nats === undefined && (o.camera !== undefined || o['nats-creds'] !== undefined || o['nats-ca'] !== undefined)) {
    throw new UsageError(`--${o.camera !== undefined ? 'camera' : o['nats-creds'] !== undefined ? 'nats-creds' : 'nats-ca'} is for watching NATS: give --nats URL too`);
  }
  // Over NATS alone there is no TCP sender, unless one is named.
  const tcpNamed = positionals.length > 0 || values.host !== undefined || values.port !== undefined;
  const senders = positionals.length > 1 ? positionals.map(parseSender) : o.nats === undefined || tcpNamed ? [{ host: o.host, port: o.port }] : [];
  const useTls = o.tls || Boolean(o['tls-ca']) || Boolean(o['tls-fingerprint']);
  return {
    wire: o.wire,
    host: o.host,
    port: o.port,
    senders,
    nats: o.nats === undefined ? undefined : { url: o.nats, cameras: o.camera!, credsFile: o['nats-creds'], caFile: o['nats-ca'] },
    display: o.display,
    record: o.record,
    httpPort: o.http,
    httpHost: o['http-host'],
    frames: o.frames,
    durationS: o.duration,
    reconnect: !o['no-reconnect'],
    maxSize: o['max-size'],
    secret: o.secret,
    tls: useTls
      ? { ...(o['tls-ca'] ? { caFile: o['tls-ca'] } : {}), ...(o['tls-fingerprint'] ? { fingerprint256: o['tls-fingerprint'] } : {}) }
      : undefined,
    name: o.name,
    statsJson: o['stats-json'],
    quiet: o.quiet,
  };
}

/** One of several HOST[:PORT] arguments (port 9999 when none is given). */
function parseSender(argument: string): { host: string; port: number } {
  const { host, port = '9999' } = splitHostPort(argument);
  const checked = portSchema.safeParse(port);
  if (!checked.success) throw new UsageError(`sender ${JSON.stringify(argument)}: port ${JSON.stringify(port)} ${checked.error.issues[0]!.message}`);
  return { host: host ?? '127.0.0.1', port: checked.data };
}

/** "host", "host:port", "[v6]:port" or ":port". */
function splitHostPort(target: string): { host?: string; port?: string } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(target);
  if (v6) return { host: v6[1]!, ...(v6[2] ? { port: v6[2] } : {}) };
  const colon = target.lastIndexOf(':');
  if (colon < 0) return { host: target };
  const host = target.slice(0, colon);
  return { ...(host ? { host } : {}), port: target.slice(colon + 1) };
}

function defaultName(): string {
  return `${process.env.USER ?? 'receiver'}@${hostname()}`.slice(0, 200);
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
