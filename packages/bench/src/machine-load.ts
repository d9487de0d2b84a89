import { readFileSync } from 'node:fs';

/** The machine's CPU counters (all cores), or undefined where there is no /proc/stat. */
export function cpuTimes(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const fields = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0); // idle + iowait
    const total = fields.slice(0, 8).reduce((a, b) => a + b, 0); // user..steal, not guest
    return { busy: total - idle, total };
  } catch {
    return undefined; // not Linux
  }
}

/** Busy share of all cores between two cpuTimes() samples, in percent of one core (0..100 x cores). */
export function busyBetween(
  before: { busy: number; total: number } | undefined,
  after: { busy: number; total: number } | undefined,
  cores: number,
): number | undefined {
  if (!before || !after || after.total === before.total) return undefined;
  return Math.round(((after.busy - before.busy) / (after.total - before.total)) * 100 * cores);
}

/** Share of all cores busy over the next `ms` milliseconds, in percent of one core (0..100 x cores). */
export async function busyPercent(ms: number, cores: number): Promise<number | undefined> {
  const before = cpuTimes();
  await new Promise((resolve) => setTimeout(resolve, ms));
  return busyBetween(before, cpuTimes(), cores);
}

/**
 * Waits until the machine is quiet (other processes use less than `thresholdPercent` of one
 * core, sampled over 0.5 s) or `maxWaitMs` has passed. Returns the last sample: the background
 * load the next measurement starts with.
 */
export async function waitForQuiet(thresholdPercent: number, maxWaitMs: number, cores: number): Promise<number | undefined> {
  const deadline = Date.now() + maxWaitMs;
  for (;;) {
    const busy = await busyPercent(500, cores);
    if (busy === undefined || busy < thresholdPercent || Date.now() >= deadline) return busy;
  }
}
