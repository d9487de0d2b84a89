import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/PID/stat's times (USER_HZ: 100 on Linux). */
const TICKS_PER_SECOND = 100;

interface ProcTimes {
  ppid: number;
  /** utime + stime. */
  own: number;
  /** cutime + cstime: children that exited and were reaped. */
  reaped: number;
}

/** One process's times from /proc/PID/stat; undefined once it is gone. */
function readTimes(pid: number | string): ProcTimes | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ..."; comm may hold anything, so split after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(fields[1]), own: Number(fields[11]) + Number(fields[12]), reaped: Number(fields[13]) + Number(fields[14]) };
  } catch {
    return undefined; // exited while we looked
  }
}

function readAll(): Map<number, ProcTimes> {
  const all = new Map<number, ProcTimes>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const times = readTimes(entry);
    if (times) all.set(Number(entry), times);
  }
  return all;
}

/** User + system CPU seconds of one process so far (not its children), or NaN once it is gone. */
export function processCpuSeconds(pid: number): number {
  const times = readTimes(pid);
  return times ? times.own / TICKS_PER_SECOND : NaN;
}

/** CPU ticks of a process and all its descendants at one moment. */
export interface TreeSample {
  wallMs: number;
  /** pid -> times, of the root and every descendant alive. */
  members: Map<number, ProcTimes>;
  /** Command names, for the report. */
  names: string[];
}

export function sampleTree(rootPid: number): TreeSample {
  const all = readAll();
  const members = new Map<number, ProcTimes>();
  const root = all.get(rootPid);
  if (root) members.set(rootPid, root);
  // Parents before children is not guaranteed: repeat until no more are found.
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, times] of all) {
      if (!members.has(pid) && members.has(times.ppid)) {
        members.set(pid, times);
        grew = true;
      }
    }
  }
  const names = [...members.keys()].map((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      return '?';
    }
  });
  return { wallMs: performance.now(), members, names };
}

/**
 * Cores a process tree used between two samples (1 = one core busy all the time): the growth of
 * every member alive at the end (all of a member started since), plus what members reaped in
 * between (cutime of the tree: an ffmpeg encoder that ended) minus what those had used before.
 * `only`: count these members alone (e.g. the root without its children).
 */
export function coresBetween(before: TreeSample, after: TreeSample, only?: (pid: number) => boolean): number {
  let ticks = 0;
  for (const [pid, times] of after.members) {
    if (only && !only(pid)) continue;
    const earlier = before.members.get(pid);
    ticks += times.own - (earlier?.own ?? 0) + times.reaped - (earlier?.reaped ?? 0);
  }
  for (const [pid, times] of before.members) {
    if (only && !only(pid)) continue;
    // Gone by the end: its whole life is in its parent's cutime above; take off the part before.
    if (!after.members.has(pid)) ticks -= times.own;
  }
  const seconds = (after.wallMs - before.wallMs) / 1000;
  return seconds > 0 ? ticks / TICKS_PER_SECOND / seconds : NaN;
}
