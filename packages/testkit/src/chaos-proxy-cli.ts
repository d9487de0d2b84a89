import { parseArgs } from 'node:util';
import { ChaosProxy, type ChaosProxyOptions, type Direction, type LinkOptions, type LinkPhase, type RateChange } from './chaos-proxy';

export const CHAOS_PROXY_USAGE = `Usage: chaos-proxy --target HOST:PORT [options]

A TCP proxy that emulates a slow link (rate limit with small buffers, one-way delay, rates
that change on a schedule) and other network faults, for tests and benchmarks. Every
accepted connection is forwarded to --target through its own emulated link.

Options:
  --target HOST:PORT      where to forward connections (required)
  --listen [HOST:]PORT    where to listen (default 127.0.0.1:0; port 0 picks a free one)
  --rate RATE             link capacity each way, per second: 5.8mbit, 500kbit, 2MB, 64KiB,
                          ... (bit units count bits, B units bytes), or unlimited (default)
  --up-rate RATE          client-to-target capacity (default: --rate)
  --down-rate RATE        target-to-client capacity, where video flows (default: --rate)
  --delay MS              one-way delay added each way after the rate limit, in ms
                          (default 0; a 20 ms round trip is --delay 10)
  --buffer SIZE           bytes the proxy queues per connection and direction before it
                          stops reading, so back-pressure reaches the sender (default 64KiB)
  --burst SIZE            token bucket depth (default: the larger of 16KiB and 10 ms at the rate)
  --schedule PHASES       capacity over time, in both directions: comma-separated
                          DURATION:RATE phases, e.g. "2s:full,5s:30%,full". DURATION is
                          500ms, 2s, 1.5m; RATE is full (the direction's --rate), N% of it,
                          unlimited, or a rate such as 2mbit. The last phase may leave out
                          DURATION and then lasts until the end; after a last timed phase
                          the link returns to its --rate
  --schedule-from WHEN    start (default: when listening) or first-connection
  --max-chunk-bytes N     re-split the stream into chunks of random sizes 1..N
  --chunk-delay MS        stall this long before forwarding each chunk (slows the transfer)
  --cut-up N              per connection, cut after N bytes client-to-target
  --cut-down N            per connection, cut after N bytes target-to-client
  --seed N                seed for the chunk sizes, to repeat a run
  --stats-json            print the once-a-second figures as JSON lines
  -h, --help              show this help

Output (stdout): "LISTENING AT: HOST:PORT" once listening; then once a second
  FORWARDED Mbit/s up 0.051 down 5.793 | limit Mbit/s up none down 5.800 | connections 1
(forwarded over the last second, all connections together; with --stats-json one JSON
object per line instead), and a line such as "RATE down 1.740 Mbit/s (phase 2 of 3)"
whenever a rate changes. Errors go to stderr. SIGINT or SIGTERM closes every connection
and exits with code 0; bad options exit with code 2.
`;

export class UsageError extends Error {}

const BIT_UNITS: Record<string, number> = { bit: 1 / 8, kbit: 1e3 / 8, mbit: 1e6 / 8, gbit: 1e9 / 8 };
const BYTE_UNITS: Record<string, number> = { B: 1, kB: 1e3, KB: 1e3, MB: 1e6, GB: 1e9, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/**
 * A rate such as "5.8mbit", "500kbit", "2MB", "64KiB" (optionally followed by "/s") or
 * "unlimited", in bytes per second. Bit units are case-insensitive; byte units need their "B".
 */
export function parseRate(text: string): number {
  const trimmed = text.trim();
  if (/^(unlimited|inf|infinity)$/i.test(trimmed)) return Infinity;
  const match = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)(?:\/s)?$/.exec(trimmed);
  if (!match) throw new UsageError(`"${text}" is not a rate: expected a number and a unit, e.g. 5.8mbit or 725kB, or unlimited`);
  const value = Number(match[1]);
  const unit = match[2]!;
  if (unit === '') throw new UsageError(`"${text}" has no unit: write e.g. ${value}mbit (bits per second) or ${value}kB (bytes per second)`);
  const bits = BIT_UNITS[unit.toLowerCase()];
  if (bits !== undefined) return value * bits;
  const bytes = BYTE_UNITS[unit];
  if (bytes !== undefined) return value * bytes;
  if (/^[kmg]?b$/i.test(unit)) {
    const prefix = unit.slice(0, -1).toLowerCase();
    throw new UsageError(`"${text}" is ambiguous: write ${value}${prefix}bit for bits or ${value}${prefix.toUpperCase() || ''}B for bytes per second`);
  }
  throw new UsageError(`"${text}": unknown unit "${unit}" (use bit, kbit, mbit, gbit, B, kB, MB, GB, KiB, MiB or GiB)`);
}

/** A size in bytes: "65536", "64KiB", "1MB". */
export function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(text.trim());
  const factor = match && (match[2] === '' ? 1 : BYTE_UNITS[match[2]!]);
  const bytes = match && factor ? Number(match[1]) * factor : NaN;
  if (!(Number.isInteger(bytes) && bytes >= 1)) throw new UsageError(`"${text}" is not a size: expected a whole number of bytes >= 1, e.g. 65536 or 64KiB`);
  return bytes;
}

/** A duration in ms: "10" (ms), "500ms", "2s", "1.5m"; requireUnit for schedule phases, where a bare number is likely a mistake. */
export function parseDuration(text: string, requireUnit = false): number {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m)?$/.exec(text.trim());
  if (!match || (requireUnit && !match[2])) {
    throw new UsageError(`"${text}" is not a duration: expected e.g. ${requireUnit ? '500ms, 2s or 1.5m' : '10 (ms), 500ms or 2s'}`);
  }
  const unit = (match[2] ?? 'ms') as 'ms' | 's' | 'm';
  return Number(match[1]) * { ms: 1, s: 1000, m: 60_000 }[unit];
}

/**
 * A schedule such as "2s:full,5s:30%,full": DURATION:RATE phases where RATE is full (the base
 * rate), N% of it, unlimited or a rate; only the last phase may leave out its duration.
 */
export function parseSchedule(text: string): LinkPhase[] {
  const items = text.split(',').map((item) => item.trim());
  return items.map((item, index) => {
    const colon = item.indexOf(':');
    const durationText = colon === -1 ? undefined : item.slice(0, colon);
    const rateText = colon === -1 ? item : item.slice(colon + 1).trim();
    const where = `phase ${index + 1} ("${item}")`;
    if (durationText === undefined && index !== items.length - 1) {
      throw new UsageError(`${where} has no duration: only the last phase may last until the end (write e.g. 2s:${item})`);
    }
    let phase: LinkPhase;
    try {
      phase = durationText === undefined ? {} : { forMs: parseDuration(durationText, true) };
      if (phase.forMs === 0) throw new UsageError('a phase must last longer than 0');
      const percent = /^(\d+(?:\.\d+)?)%$/.exec(rateText);
      if (rateText.toLowerCase() === 'full') phase.fraction = 1;
      else if (percent) phase.fraction = Number(percent[1]) / 100;
      else phase.bytesPerSecond = parseRate(rateText);
    } catch (error) {
      throw new UsageError(`${where}: ${(error as Error).message}`);
    }
    return phase;
  });
}

/** "127.0.0.1:9999", "[::1]:9999", or with allowBarePort just "9999" (on 127.0.0.1). */
function parseHostPort(text: string, option: string, allowBarePort: boolean): { host: string; port: number } {
  const match = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text) ?? (allowBarePort ? /^()(\d+)$/.exec(text) : null);
  const port = match ? Number(match[2]) : NaN;
  if (!match || !(port >= 0 && port <= 65535) || (!allowBarePort && port === 0)) {
    throw new UsageError(`--${option} "${text}": expected ${allowBarePort ? '[HOST:]PORT' : 'HOST:PORT'} with a port ${allowBarePort ? '0' : '1'}..65535`);
  }
  return { host: match[1] || '127.0.0.1', port };
}

function parseCount(text: string, option: string, min: number): number {
  if (!/^\d+$/.test(text) || Number(text) < min) throw new UsageError(`--${option} "${text}": expected a whole number >= ${min}`);
  return Number(text);
}

export interface ChaosProxyCliOptions {
  proxy: ChaosProxyOptions;
  statsJson: boolean;
}

/** Parses argv; returns 'help' for --help, throws UsageError naming the bad option. */
export function parseChaosProxyArgs(argv: string[]): ChaosProxyCliOptions | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        target: { type: 'string' },
        listen: { type: 'string', default: '127.0.0.1:0' },
        rate: { type: 'string', default: 'unlimited' },
        'up-rate': { type: 'string' },
        'down-rate': { type: 'string' },
        delay: { type: 'string', default: '0' },
        buffer: { type: 'string' },
        burst: { type: 'string' },
        schedule: { type: 'string' },
        'schedule-from': { type: 'string', default: 'start' },
        'max-chunk-bytes': { type: 'string' },
        'chunk-delay': { type: 'string' },
        'cut-up': { type: 'string' },
        'cut-down': { type: 'string' },
        seed: { type: 'string' },
        'stats-json': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return 'help';
  const option = <T>(name: string, text: string | undefined, parse: (text: string) => T): T | undefined => {
    if (text === undefined) return undefined;
    try {
      return parse(text);
    } catch (error) {
      throw new UsageError(`--${name} ${JSON.stringify(text)}: ${(error as Error).message}`);
    }
  };
  if (values.target === undefined) throw new UsageError('--target HOST:PORT is required: where to forward connections');
  const target = parseHostPort(values.target, 'target', false);
  const listen = parseHostPort(values.listen, 'listen', true);
  const rate = option('rate', values.rate, parseRate)!;
  const oneWayDelayMs = option('delay', values.delay, (text) => parseDuration(text))!;
  const bufferBytes = option('buffer', values.buffer, parseSize);
  const burstBytes = option('burst', values.burst, parseSize);
  const schedule = option('schedule', values.schedule, parseSchedule);
  const scheduleFrom = values['schedule-from'];
  if (scheduleFrom !== 'start' && scheduleFrom !== 'first-connection') {
    throw new UsageError(`--schedule-from "${scheduleFrom}": expected start or first-connection`);
  }
  const link = (name: string, text: string | undefined): LinkOptions => ({
    bytesPerSecond: option(name, text, parseRate) ?? rate,
    oneWayDelayMs,
    ...(bufferBytes === undefined ? {} : { bufferBytes }),
    ...(burstBytes === undefined ? {} : { burstBytes }),
    ...(schedule === undefined ? {} : { schedule }),
  });
  const cutUp = option('cut-up', values['cut-up'], (text) => parseCount(text, 'cut-up', 0));
  const cutDown = option('cut-down', values['cut-down'], (text) => parseCount(text, 'cut-down', 0));
  const maxChunkBytes = option('max-chunk-bytes', values['max-chunk-bytes'], (text) => parseCount(text, 'max-chunk-bytes', 1));
  const chunkDelay = option('chunk-delay', values['chunk-delay'], (text) => parseDuration(text));
  const seed = option('seed', values.seed, (text) => parseCount(text, 'seed', 0));
  return {
    proxy: {
      target,
      listenHost: listen.host,
      listenPort: listen.port,
      link: { upstream: link('up-rate', values['up-rate']), downstream: link('down-rate', values['down-rate']) },
      scheduleStart: scheduleFrom,
      ...(maxChunkBytes === undefined ? {} : { maxChunkBytes }),
      ...(chunkDelay === undefined ? {} : { delayMs: chunkDelay }),
      ...(cutUp === undefined && cutDown === undefined ? {} : { cutAfterBytes: { upstream: cutUp, downstream: cutDown } }),
      ...(seed === undefined ? {} : { seed }),
    },
    statsJson: values['stats-json'],
  };
}

const SHORT: Record<Direction, string> = { upstream: 'up', downstream: 'down' };
const mbit = (bytesPerSecond: number) => (bytesPerSecond * 8) / 1e6;
const showRate = (bytesPerSecond: number) => (Number.isFinite(bytesPerSecond) ? mbit(bytesPerSecond).toFixed(3) : 'none');

function describeChange(change: RateChange, phases: number | undefined): string {
  const rate = Number.isFinite(change.bytesPerSecond) ? `${mbit(change.bytesPerSecond).toFixed(3)} Mbit/s` : 'unlimited';
  const why = change.phase !== undefined ? `phase ${change.phase + 1} of ${phases}` : phases !== undefined ? 'schedule over: base rate' : 'set';
  return `RATE ${SHORT[change.direction]} ${rate} (${why})`;
}

/** Entry point of packages/testkit/bin/chaos-proxy. Sets process.exitCode. */
export async function run(argv: string[]): Promise<void> {
  let options: ChaosProxyCliOptions | 'help';
  try {
    options = parseChaosProxyArgs(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`chaos-proxy: ${error.message}\nTry --help.\n`);
    process.exitCode = 2;
    return;
  }
  if (options === 'help') {
    process.stdout.write(CHAOS_PROXY_USAGE);
    return;
  }
  const phases = options.proxy.link?.downstream?.schedule?.length;
  let proxy: ChaosProxy;
  try {
    proxy = await ChaosProxy.start({ ...options.proxy, onRateChange: (change) => process.stdout.write(`${describeChange(change, phases)}\n`) });
  } catch (error) {
    process.stderr.write(`chaos-proxy: ${(error as Error).message}\n`);
    process.exitCode = 1;
    return;
  }
  const { target } = options.proxy;
  const shown = (host: string) => (host.includes(':') ? `[${host}]` : host);
  process.stdout.write(`LISTENING AT: ${shown(proxy.host)}:${proxy.port}\n`);
  process.stderr.write(`[chaos-proxy] forwarding to ${shown(target.host)}:${target.port}\n`);

  let last = { at: performance.now(), forwarded: { ...proxy.bytesForwarded } };
  const stats = setInterval(() => {
    const now = { at: performance.now(), forwarded: { ...proxy.bytesForwarded } };
    const before = last;
    last = now;
    const seconds = (now.at - before.at) / 1000;
    const per = (direction: Direction) => (now.forwarded[direction] - before.forwarded[direction]) / seconds;
    const round = (x: number) => Math.round(x * 1000) / 1000;
    if (options.statsJson) {
      const limit = (direction: Direction) => (Number.isFinite(proxy.rate(direction)) ? round(mbit(proxy.rate(direction))) : null);
      const figures = {
        time: new Date().toISOString(),
        upMbps: round(mbit(per('upstream'))),
        downMbps: round(mbit(per('downstream'))),
        upLimitMbps: limit('upstream'),
        downLimitMbps: limit('downstream'),
        upBytes: now.forwarded.upstream,
        downBytes: now.forwarded.downstream,
        connections: proxy.activeConnections,
      };
      process.stdout.write(`${JSON.stringify(figures)}\n`);
    } else {
      process.stdout.write(
        `FORWARDED Mbit/s up ${mbit(per('upstream')).toFixed(3)} down ${mbit(per('downstream')).toFixed(3)} | ` +
          `limit Mbit/s up ${showRate(proxy.rate('upstream'))} down ${showRate(proxy.rate('downstream'))} | connections ${proxy.activeConnections}\n`,
      );
    }
  }, 1000);

  const signal = await new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  clearInterval(stats);
  process.stderr.write(`[chaos-proxy] ${signal}: closing\n`);
  await proxy.close();
  process.exitCode = 0;
}
