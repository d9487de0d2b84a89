/**
 * How the drivers measure themselves: CPU time from process.resourceUsage() (user + system,
 * all threads of the process, so OpenCV's and libuv's worker threads count too) over a window
 * of wall time, and the peak resident set size of the whole run (getrusage's ru_maxrss).
 */

export interface WindowMark {
  wallMs: number;
  userMicros: number;
  systemMicros: number;
}

export interface WindowUsage {
  /** Wall seconds from mark to now. */
  seconds: number;
  userSeconds: number;
  systemSeconds: number;
  /** (user + system) / wall, in percent of one core: 200 means both cores of this machine. */
  cpuPercent: number;
  /** Peak resident set size of the process so far, in MB (10^6 bytes). */
  maxRssMB: number;
}

export function markWindow(): WindowMark {
  const usage = process.resourceUsage();
  return { wallMs: performance.now(), userMicros: usage.userCPUTime, systemMicros: usage.systemCPUTime };
}

export function windowSince(mark: WindowMark): WindowUsage {
  const usage = process.resourceUsage();
  const seconds = (performance.now() - mark.wallMs) / 1000;
  const userSeconds = (usage.userCPUTime - mark.userMicros) / 1e6;
  const systemSeconds = (usage.systemCPUTime - mark.systemMicros) / 1e6;
  return {
    seconds: round(seconds, 3),
    userSeconds: round(userSeconds, 3),
    systemSeconds: round(systemSeconds, 3),
    cpuPercent: seconds > 0 ? round(((userSeconds + systemSeconds) / seconds) * 100, 1) : 0,
    maxRssMB: round((usage.maxRSS * 1024) / 1e6, 1),
  };
}

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Prefix of the one line a driver prints with its figures; the orchestrator looks for it. */
export const RESULT_PREFIX = 'BENCH-RESULT ';

export function printResult(result: object): void {
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`);
}

/**
 * The drivers' control signals: SIGUSR2 starts the measured window (after warm-up), SIGTERM or
 * SIGINT ends it; the driver then prints its figures and exits. SIGUSR1 is Node's inspector.
 */
export function onControlSignals(handlers: { start: () => void; stop: () => void }): void {
  process.on('SIGUSR2', handlers.start);
  process.once('SIGTERM', handlers.stop);
  process.once('SIGINT', handlers.stop);
}
