import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

export type OutputStream = 'stdout' | 'stderr';

export interface ExitStatus {
  code: number | null;
  signal: string | null;
}

export interface StartProcessOptions {
  /** Variables to set on top of this process's environment; undefined removes one. */
  env?: Record<string, string | undefined>;
  /** Working directory (default: the workspace root). */
  cwd?: string;
  /** Name used in error messages (default: the command's base name). */
  name?: string;
}

export interface WaitForLineOptions {
  /** Which output to search (default 'any'). */
  stream?: OutputStream | 'any';
  /** Default 20 000 ms. */
  timeoutMs?: number;
  /** Only lines that arrive after this call (default false: lines already printed count too). */
  newOnly?: boolean;
}

/** True if a process with this pid exists at all (a zombie, an exit nobody reaped yet, counts). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The monorepo root, found from this file's location (packages/testkit/src). */
export const workspaceRoot = path.resolve(__dirname, '..', '..', '..');

/** SIGTERM first; a process still running this long after it gets SIGKILL. */
const KILL_GRACE_MS = 3000;
/** How many lines of output an error message quotes. */
const OUTPUT_TAIL_LINES = 30;
/** After the process exits, how long to wait for its last output before giving up on a line. */
const OUTPUT_SETTLE_MS = 250;

const ANSI_ESCAPES = /\u001b\[[0-9;?]*[ -/]*[@-~]/g;

/** Every process started and not yet known to be gone, for the last-resort cleanup below. */
const running = new Set<AppProcess>();

/*
 * The reaper: a small watchdog process that holds the list of our process groups and kills
 * them when its stdin closes, which happens however this process ends (even by SIGKILL, or a
 * jest worker torn down). It is needed because under jest process.on('exit') never fires:
 * jest gives each test file a copy of `process` with its own event listeners.
 */
const REAPER_SCRIPT = `
const groups = new Set();
let pending = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (text) => {
  const lines = (pending + text).split('\\n');
  pending = lines.pop();
  for (const line of lines) {
    if (line[0] === '+') groups.add(Number(line.slice(1)));
    if (line[0] === '-') groups.delete(Number(line.slice(1)));
  }
});
const signalAll = (signal) => { for (const group of groups) { try { process.kill(-group, signal); } catch {} } };
process.stdin.on('end', () => {
  if (groups.size === 0) process.exit(0);
  signalAll('SIGTERM');
  setTimeout(() => { signalAll('SIGKILL'); process.exit(0); }, 1000);
});
`;
let reaper: ChildProcess | undefined;

function tellReaper(message: string): void {
  if (!reaper) {
    // Its own process group, so a Ctrl+C aimed at the test run does not take it down first.
    reaper = spawn(process.execPath, ['-e', REAPER_SCRIPT], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
    reaper.on('error', () => undefined);
    reaper.stdin?.on('error', () => undefined);
    // Neither the reaper nor its pipe may keep this process alive.
    reaper.unref();
    (reaper.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  }
  reaper.stdin?.write(`${message}\n`);
}

function track(child: AppProcess): void {
  running.add(child);
  tellReaper(`+${child.pid}`);
}

function untrack(child: AppProcess): void {
  if (running.delete(child)) tellReaper(`-${child.pid}`);
}

/**
 * Whether any live process is left in process group `pgid`. On Linux /proc is read so that
 * zombies do not count: an orphaned grandchild stays a zombie until init reaps it, which in
 * some containers takes a second or more, and kill(-pgid, 0) would report it as running.
 */
function groupExists(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return true;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // "pid (comm) state ppid pgrp ..."; comm may contain anything, so split after its ')'.
      const [state, , group] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(group) === pgid && state !== 'Z' && state !== 'X') return true;
    } catch {
      // exited while we looked
    }
  }
  return false;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A child process started by the testkit, in its own process group so that signals reach
 * everything it spawned (nx runs the app as a grandchild). Output is collected line by line,
 * ANSI colour codes removed.
 */
export class AppProcess implements AsyncDisposable {
  readonly pid: number;
  readonly name: string;
  readonly stdoutLines: string[] = [];
  readonly stderrLines: string[] = [];
  /** Both streams in arrival order, prefixed "[stdout] " / "[stderr] ", for error messages. */
  readonly outputLines: string[] = [];
  /** Resolves when the process (the group leader) has exited. */
  readonly exited: Promise<ExitStatus>;
  private exitStatus: ExitStatus | undefined;
  private outputDone = false;
  private readonly lineListeners = new Set<(stream: OutputStream, line: string) => void>();
  private readonly outputDoneListeners = new Set<() => void>();
  private killing: Promise<ExitStatus> | undefined;

  /** Use startProcess or startApp; this wraps a child spawned with detached: true and piped output. */
  constructor(child: ChildProcess, name: string) {
    if (child.pid === undefined) throw new Error(`${name}: process has no pid`);
    this.pid = child.pid;
    this.name = name;
    this.collect(child, 'stdout');
    this.collect(child, 'stderr');
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitStatus = { code, signal };
        resolve(this.exitStatus);
        // A grandchild may hold the pipes open; do not wait for it to see the last lines.
        setTimeout(() => this.finishOutput(), OUTPUT_SETTLE_MS).unref();
        if (!groupExists(this.pid)) untrack(this);
      });
    });
    child.once('close', () => this.finishOutput());
    track(this);
  }

  /** Exit code and signal once the process has exited, else undefined. */
  get exitedWith(): ExitStatus | undefined {
    return this.exitStatus;
  }

  /** The last `count` lines of output, for error messages. */
  outputTail(count = OUTPUT_TAIL_LINES): string {
    const lines = this.outputLines.slice(-count);
    return lines.length ? lines.join('\n') : '(no output)';
  }

  /** Resolves with the first line matching `pattern`; rejects on timeout or exit, quoting the output. */
  waitForLine(pattern: RegExp, options: WaitForLineOptions = {}): Promise<string> {
    const { stream = 'any', timeoutMs = 20_000, newOnly = false } = options;
    const matches = (line: string) => line.search(pattern) !== -1;
    if (!newOnly) {
      const earlier = stream === 'stdout' ? this.stdoutLines : stream === 'stderr' ? this.stderrLines : this.outputLines.map(stripPrefix);
      const found = earlier.find(matches);
      if (found !== undefined) return Promise.resolve(found);
    }
    const where = stream === 'any' ? 'output' : stream;
    return new Promise((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        this.lineListeners.delete(onLine);
        this.outputDoneListeners.delete(onOutputDone);
      };
      const onLine = (from: OutputStream, line: string) => {
        if ((stream === 'any' || stream === from) && matches(line)) {
          cleanup();
          resolve(line);
        }
      };
      const onOutputDone = () => {
        cleanup();
        reject(this.failure(`exited (${describeExit(this.exitStatus)}) before printing a line matching ${pattern} on ${where}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(this.failure(`printed no line matching ${pattern} on ${where} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.lineListeners.add(onLine);
      if (this.outputDone) onOutputDone();
      else this.outputDoneListeners.add(onOutputDone);
    });
  }

  /** Resolves with the exit status; rejects (quoting the output) if it has not exited in time. */
  async waitForExit(timeoutMs = 10_000): Promise<ExitStatus> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(this.failure(`did not exit within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends a signal to the whole process group (like a terminal does); ignored once it is gone. */
  signal(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.pid, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }

  /**
   * Stops the process and everything it started: SIGTERM to the group, SIGKILL to whatever is
   * left after graceMs (default 3 s). Resolves with the leader's exit status; safe to call
   * repeatedly (later calls share the first one's outcome).
   */
  kill(graceMs = KILL_GRACE_MS): Promise<ExitStatus> {
    this.killing ??= this.terminate(graceMs);
    return this.killing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.kill().then(() => undefined);
  }

  private async terminate(graceMs: number): Promise<ExitStatus> {
    const deadline = Date.now() + graceMs;
    if (groupExists(this.pid)) {
      this.signal('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.exited, new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
      // The leader may be gone while children it started still ignore SIGTERM.
      while (groupExists(this.pid) && Date.now() < deadline) await sleep(50);
      if (groupExists(this.pid)) {
        this.signal('SIGKILL');
        // SIGKILL is not instant; return only once nothing of the group is left running.
        const killDeadline = Date.now() + 5000;
        while (groupExists(this.pid) && Date.now() < killDeadline) await sleep(10);
      }
    }
    const status = await this.exited;
    untrack(this);
    return status;
  }

  private failure(what: string): Error {
    return new Error(`${this.name} (pid ${this.pid}) ${what}. Last output:\n${this.outputTail()}`);
  }

  private collect(child: ChildProcess, stream: OutputStream): void {
    const source = child[stream];
    if (!source) return;
    source.setEncoding('utf8');
    let partial = '';
    const emit = (raw: string) => {
      const line = raw.replace(/\r$/, '').replace(ANSI_ESCAPES, '');
      (stream === 'stdout' ? this.stdoutLines : this.stderrLines).push(line);
      this.outputLines.push(`[${stream}] ${line}`);
      for (const listener of [...this.lineListeners]) listener(stream, line);
    };
    source.on('data', (text: string) => {
      const pieces = (partial + text).split('\n');
      partial = pieces.pop() ?? '';
      for (const piece of pieces) emit(piece);
    });
    source.on('end', () => {
      if (partial) emit(partial);
      partial = '';
    });
  }

  private finishOutput(): void {
    if (this.outputDone) return;
    this.outputDone = true;
    for (const listener of [...this.outputDoneListeners]) listener();
  }
}

function stripPrefix(line: string): string {
  return line.replace(/^\[std(?:out|err)\] /, '');
}

function describeExit(status: ExitStatus | undefined): string {
  if (!status) return 'still running';
  return status.signal ? `signal ${status.signal}` : `code ${status.code}`;
}

function mergeEnv(overrides: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

/**
 * Starts any command as an AppProcess: own process group (detached), stdin closed, stdout and
 * stderr collected. Throws if the command cannot be started.
 */
export function startProcess(command: string, args: readonly string[] = [], options: StartProcessOptions = {}): AppProcess {
  const name = options.name ?? path.basename(command);
  const child = spawn(command, args, {
    cwd: options.cwd ?? workspaceRoot,
    env: mergeEnv(options.env),
    // Own process group: kill(-pid) then reaches the app and anything it spawned.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) {
    // The reason arrives as an 'error' event; keep it from becoming an uncaught exception.
    child.once('error', () => undefined);
    throw new Error(`could not start ${command} ${args.join(' ')} (not found or not executable?)`);
  }
  child.on('error', () => undefined);
  return new AppProcess(child, name);
}

export type AppName = 'sender' | 'receiver' | 'call';

export interface StartAppOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Run through `nx run <app>:serve -- args` instead of the bin script directly. */
  viaNx?: boolean;
}

/**
 * The command line startApp runs (exported for tests): the app's launcher, which runs its bundle
 * (packages/<app>/dist, written by `npx nx run <app>:build`, scripts/setup.sh, and the e2e
 * tests' global setup); or `nx run <app>:serve`, which builds the app first when it changed.
 */
export function appCommand(app: AppName, args: readonly string[], viaNx = false): { command: string; args: string[] } {
  if (viaNx) {
    return { command: path.join(workspaceRoot, 'node_modules', '.bin', 'nx'), args: ['run', `${app}:serve`, '--', ...args] };
  }
  return { command: process.execPath, args: [path.join(workspaceRoot, 'packages', app, 'bin', `camstream-${app}`), ...args] };
}

/** Starts the real sender, receiver or call with `args`; kill it (or `await using` it) when done. */
export function startApp(app: AppName, args: readonly string[] = [], options: StartAppOptions = {}): AppProcess {
  const { command, args: fullArgs } = appCommand(app, args, options.viaNx);
  // No daemon, cloud or terminal UI: one plain, short-lived nx process whose output we can read.
  const nxEnv = options.viaNx ? { NX_DAEMON: 'false', NX_NO_CLOUD: 'true', NX_TUI: 'false' } : {};
  return startProcess(command, fullArgs, { env: { ...nxEnv, ...options.env }, cwd: options.cwd, name: app });
}

/** Kills every process the testkit started that may still run; resolves when they are gone. */
export async function stopAllProcesses(): Promise<void> {
  await Promise.all([...running].map((child) => child.kill()));
}

/** Last resort when this process exits normally (synchronously, so only SIGKILL is possible). */
function killAllNow(): void {
  for (const child of running) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

process.on('exit', killAllNow);

// Under jest, clean up after each test file that loaded the testkit: the worker process lives
// on for other files, and this file's 'exit' listener would never run (see the reaper above).
const jestAfterAll = (globalThis as { afterAll?: (hook: () => Promise<void>, timeoutMs?: number) => void }).afterAll;
if (typeof jestAfterAll === 'function') {
  try {
    jestAfterAll(async () => {
      await stopAllProcesses();
      process.off('exit', killAllNow);
      // Nothing left to guard: let this file's reaper go.
      reaper?.stdin?.end();
      reaper = undefined;
    }, 15_000);
  } catch {
    // Loaded from inside a test, where hooks cannot be added; the reaper still guards.
  }
}
