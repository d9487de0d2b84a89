// Runs the real Python (Debian's python3 with python3-numpy) for interoperability tests.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';

/** Debian's interpreter, which has numpy (a venv's python3 on PATH may not). */
export const PYTHON = process.env['CAMSTREAM_PYTHON'] ?? '/usr/bin/python3';

export interface PythonResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs python with `args`, writing `input` to its stdin; resolves when it exits. */
export async function runPython(args: readonly string[], input?: Buffer | string): Promise<PythonResult> {
  const child = spawn(PYTHON, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  return collect(child, input);
}

/** A python process that has started: read its first stdout line, then wait for the rest. */
export interface StartedPython {
  firstLine: string;
  done: Promise<PythonResult>;
  child: ChildProcessWithoutNullStreams;
}

/** Starts python and waits for its first line of output (e.g. the port it listens on). */
export async function startPython(args: readonly string[]): Promise<StartedPython> {
  const child = spawn(PYTHON, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const done = collect(child);
  let seen = '';
  const firstLine = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString('utf8');
      const newline = seen.indexOf('\n');
      if (newline >= 0) {
        child.stdout.off('data', onData);
        resolve(seen.slice(0, newline));
      }
    };
    child.stdout.on('data', onData);
    void done.then((result) => reject(new Error(`python exited (${result.code}) before printing a line: ${result.stderr}`)));
  });
  return { firstLine, done, child };
}

async function collect(child: ChildProcessWithoutNullStreams, input?: Buffer | string): Promise<PythonResult> {
  const stdout: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  child.stdin.on('error', () => undefined); // python may exit without reading all its input
  child.stdin.end(input);
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout: Buffer.concat(stdout), stderr };
}
