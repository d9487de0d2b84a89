import type { PreparedH264Decoder } from '@camstream/ffmpeg';
import type { CameraSelection } from '@camstream/nats';
import { parseReceiverArgs, RECEIVER_USAGE, UsageError, type ReceiverCliOptions } from './options';

const log = (line: string) => process.stderr.write(`[receiver] ${line}\n`);

/** TCP senders that get a decoder process started ahead (each costs ffmpeg's start-up, ~0.15 s of CPU). */
const PREPARED_DECODERS_AT_MOST = 4;

/** Entry point of `camstream-receiver` and `nx run receiver:serve`. Sets process.exitCode. */
export async function run(argv: string[]): Promise<void> {
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
    process.exitCode = await watch(options, selection);
  } catch (err) {
    process.stderr.write(`camstream-receiver: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}

async function watch(options: ReceiverCliOptions, selection: CameraSelection | undefined): Promise<number> {
  const stop = new AbortController();
  // Listening for signals from the start: a signal that arrives while no listener is registered
  // kills the process at once (no bye to the sender, no summary, a recording without its index).
  const onSignal = (signal: string) => {
    log(`${signal}: stopping`);
    stop.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // ffmpeg takes 130-180 ms to start. Started now, beside the loading of OpenCV, an H.264 stream's
  // first picture does not wait for it; a stream in another encoding ends it at the hello.
  let preparedDecoders: PreparedH264Decoder[] = [];
  if (options.wire === 'camstream') {
    const { PreparedH264Decoder } = await import('@camstream/ffmpeg');
    preparedDecoders = options.senders.slice(0, PREPARED_DECODERS_AT_MOST).map(() => new PreparedH264Decoder());
  }
  try {
    const { runHub } = await import('./hub/hub');
    return await runHub({ options, selection, preparedDecoders, stop, log, print: (line) => process.stdout.write(`${line}\n`) });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await Promise.all(preparedDecoders.map((prepared) => prepared.close()));
  }
}
