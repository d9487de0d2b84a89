import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const PACKAGE_ROOT = join(__dirname, '..', '..');
const FIXTURE = join(PACKAGE_ROOT, 'test', 'fixtures', 'adapter-child.ts');

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs test/fixtures/adapter-child.ts in its own Node process (through ts-node). Anything that
 * could abort a process (Qt without a display, an X server going away) runs there, not in the
 * jest worker.
 */
export class AdapterChild {
  readonly process: ChildProcess;
  readonly result: Promise<ChildResult>;
  private stdout = '';
  private stderr = '';
  private readonly waiters: Array<() => void> = [];

  constructor(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 30_000) {
    this.process = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', FIXTURE, ...args], {
      cwd: join(PACKAGE_ROOT, '..', '..'),
      env: { ...env, TS_NODE_PROJECT: join(PACKAGE_ROOT, 'tsconfig.json') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.process.stdout!.on('data', (chunk: Buffer) => {
      this.stdout += chunk.toString();
      for (const wake of this.waiters.splice(0)) wake();
    });
    this.process.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    const timer = setTimeout(() => this.process.kill('SIGKILL'), timeoutMs);
    this.result = new Promise((resolve) => {
      this.process.once('close', (code, signal) => {
        clearTimeout(timer);
        for (const wake of this.waiters.splice(0)) wake();
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr });
      });
    });
  }

  /** Resolves with the first stdout line matching `pattern`; rejects if the child exits first. */
  async waitForLine(pattern: RegExp): Promise<string> {
    for (;;) {
      const line = this.stdout.split('\n').find((candidate) => pattern.test(candidate));
      if (line !== undefined) return line;
      if (this.process.exitCode !== null || this.process.signalCode !== null) {
        throw new Error(`child exited (${this.process.exitCode ?? this.process.signalCode}) before printing ${pattern}; stdout: ${this.stdout} stderr: ${this.stderr}`);
      }
      await new Promise<void>((wake) => this.waiters.push(wake));
    }
  }

  kill(): void {
    if (this.process.exitCode === null && this.process.signalCode === null) this.process.kill('SIGKILL');
  }
}

/** Runs a child to completion. */
export function runAdapterChild(args: string[], env: NodeJS.ProcessEnv, timeoutMs?: number): Promise<ChildResult> {
  return new AdapterChild(args, env, timeoutMs).result;
}
