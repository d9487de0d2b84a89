import type { PreparedH264Decoder } from '@camstream/ffmpeg';
import type { CameraSelection } from '@camstream/nats';
import { parseReceiverArgs, RECEIVER_USAGE, UsageError, type ReceiverCliOptions } from './options';

const log = (line: string) => process.stderr.write(`[receiver] ${line}\n`);

/** TCP senders that get a decoder process started ahead (each costs ffmpeg's start-up, ~0.15 s of CPU). */
const PREPARED_DECODERS_AT_MOST = 4;

/** What the launcher started before it loaded the app (see decoder-ahead.ts). */
export interface StartedAhead {
  /** An H.264 decoder process for the first TCP sender; run() ends it if nothing takes it. */
  decoder?: PreparedH264Decoder | undefined;
}

/** Entry point of `camstream-receiver` and `nx run receiver:serve`. Sets process.exitCode. */
export async function run(argv: string[], ahead: StartedAhead = {}): Promise<void> {
  try {
    await runWith(argv, ahead);
  } finally {
    // Taken by a decoder, this does nothing; otherwise it ends the waiting process.
    await ahead.decoder?.close();
  }
}

async function runWith(argv: string[], ahead: StartedAhead): Promise<void> {
  let options: ReceiverCliOptions | 'help';
  try {
    options = parseReceiverArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`camstream-receiver: ${err.message}\nTry --help.\n`);
    process.exitCode = 2;
    return;
  }
  if (options === 'help') {
    process.stdout.write(RECEIVER_USAGE);
    return;
  }
  let selection: CameraSelection | undefined;
  if (options.nats) {
    // Checked with the NATS package's own rules (loaded only when asked for).
    const { parseCameraSelection, CameraNameError } = await import('@camstream/nats');
    try {
      selection = parseCameraSelection(options.nats.cameras);
    } catch (err) {
      if (!(err instanceof CameraNameError)) throw err;
      process.stderr.write(`camstream-receiver: --camera: ${err.message}\nTry --help.\n`);
      process.exitCode = 2;
      return;
    }
  }
  try {
    process.exitCode = await watch(options, selection, ahead);
  } catch (err) {
    process.stderr.write(`camstream-receiver: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}

async function watch(options: ReceiverCliOptions, selection: CameraSelection | undefined, ahead: StartedAhead): Promise<number> {
  const stop = new AbortController();
  // Listening for signals from the start: a signal that arrives while no listener is registered
  // kills the process at once (no bye to the sender, no summary, a recording without its index).
  const onSignal = (signal: string) => {
    log(`${signal}: stopping`);
    stop.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // ffmpeg takes 130-180 ms to start. Started now (the first one by the launcher, earlier still),
  // an H.264 stream's first picture does not wait for it; a stream in another encoding ends it at
  // the hello.
  let preparedDecoders: PreparedH264Decoder[] = [];
  const senders = options.wire === 'camstream' ? options.senders.slice(0, PREPARED_DECODERS_AT_MOST) : [];
  if (senders.length > 0) {
    const { PreparedH264Decoder } = await import('@camstream/ffmpeg');
    preparedDecoders = senders.map((_, index) => (index === 0 && ahead.decoder?.ready ? ahead.decoder : new PreparedH264Decoder()));
  }
  // Not given to a TCP sender (none is watched, or it could not start): end it now.
  if (ahead.decoder && preparedDecoders[0] !== ahead.decoder) void ahead.decoder.close();
  try {
    const { runHub } = await import('./hub/hub');
    return await runHub({ options, selection, preparedDecoders, stop, log, print: (line) => process.stdout.write(`${line}\n`) });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await Promise.all(preparedDecoders.map((prepared) => prepared.close()));
  }
}
