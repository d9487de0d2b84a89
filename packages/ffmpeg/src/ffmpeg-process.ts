import { spawn, type ChildProcess } from 'node:child_process';
import { FfmpegNotFoundError } from './errors';

/** The ffmpeg program: CAMSTREAM_FFMPEG if set, else `ffmpeg` on the PATH. */
export function defaultFfmpegPath(): string {
  return process.env['CAMSTREAM_FFMPEG'] || 'ffmpeg';
}

/** The ffprobe program: CAMSTREAM_FFPROBE if set, else `ffprobe` on the PATH. */
export function defaultFfprobePath(): string {
  return process.env['CAMSTREAM_FFPROBE'] || 'ffprobe';
}

/** How many of the child's last stderr lines an error message quotes. */
const STDERR_TAIL_LINES = 6;
/** A stderr line longer than this is cut (ffmpeg prints hex dumps of SEI payloads, for one). */
const MAX_LINE_CHARS = 500;

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/**
 * One ffmpeg child process with piped stdin, stdout and stderr: stderr is split into lines (given
 * to `onStderrLine`, the last few kept for error messages), the exit is a promise, and close()
 * ends it for sure. The child runs in its own process group, so a Ctrl-C aimed at the terminal
 * reaches only our process, which then closes the child in order (a recording is finished, not
 * cut); if our process dies, the child sees its stdin end and exits by itself.
 */
export class FfmpegProcess {
  readonly child: ChildProcess;
  /** Resolves once the child has exited and its pipes have closed. */
  readonly exited: Promise<ExitStatus>;
  private readonly tail: string[] = [];
  private partialLine = '';
  private exitStatus: ExitStatus | undefined;

  /**
   * Throws FfmpegNotFoundError at once when the program cannot be started. `onStderrLine` may be
   * set later (a process started ahead of its user); lines before that only go to the tail.
   */
  constructor(
    readonly program: string,
    args: readonly string[],
    public onStderrLine?: (line: string) => void,
  ) {
    const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    if (child.pid === undefined) {
      // The reason comes as an 'error' event on the next tick; nobody else listens for it.
      child.once('error', () => undefined);
      throw new FfmpegNotFoundError(program);
    }
    this.child = child;
    child.on('error', () => undefined); // a failed kill() or write: the exit tells the rest
    child.stdin!.on('error', () => undefined); // EPIPE once the child died: reported through `exited`
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => this.readStderr(text));
    this.exited = new Promise((resolve) =>
      child.once('close', (code, signal) => {
        if (this.partialLine) this.line(this.partialLine);
        this.partialLine = '';
        this.exitStatus = { code, signal };
        resolve(this.exitStatus);
      }),
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Undefined while the child runs. */
  get exitedWith(): ExitStatus | undefined {
    return this.exitStatus;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** "exited with code 1: <last stderr lines>", for error messages. */
  describeExit(status: ExitStatus | undefined = this.exitStatus): string {
    const how = !status ? 'is still running' : status.signal ? `was killed by ${status.signal}` : `exited with code ${status.code}`;
    const said = this.tail.join(' | ');
    return `${this.program} (pid ${this.pid}) ${how}${said ? `: ${said}` : ''}`;
  }

  /**
   * Ends the child: closes its stdin (ffmpeg then finishes its output and exits), and kills it
   * if it has not exited within `graceMs`. Resolves once it is gone.
   */
  async close(graceMs: number): Promise<ExitStatus> {
    if (this.running) {
      this.child.stdin!.end();
      const timer = setTimeout(() => this.kill(), graceMs);
      try {
        return await this.exited;
      } finally {
        clearTimeout(timer);
      }
    }
    return this.exited;
  }

  /** Kills the child at once (its output may be incomplete). */
  kill(): void {
    if (this.running) this.child.kill('SIGKILL');
  }

  /** Lets our process exit while the child runs (idle children must not keep it alive), or not. */
  setKeepsAlive(keepsAlive: boolean): void {
    for (const handle of [this.child, this.child.stdin, this.child.stdout, this.child.stderr] as Array<{ ref(): void; unref(): void } | null>) {
      if (keepsAlive) handle?.ref();
      else handle?.unref();
    }
  }

  private readStderr(text: string): void {
    // ffmpeg ends progress lines with \r; we turn stats off, but treat \r as a line end anyway.
    const lines = (this.partialLine + text).split(/\r?\n|\r/);
    this.partialLine = lines.pop() ?? '';
    if (this.partialLine.length > MAX_LINE_CHARS) {
      this.line(this.partialLine);
      this.partialLine = '';
    }
    for (const line of lines) if (line) this.line(line);
  }

  private line(raw: string): void {
    const line = raw.length > MAX_LINE_CHARS ? `${raw.slice(0, MAX_LINE_CHARS)}...` : raw;
    this.onStderrLine?.(line);
    if (/\[(error|fatal|panic|warning)\]/.test(line) || !/^\[/.test(line)) {
      this.tail.push(line);
      if (this.tail.length > STDERR_TAIL_LINES) this.tail.shift();
    }
  }
}
