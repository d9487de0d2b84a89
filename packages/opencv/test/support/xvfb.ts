import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

export interface VirtualDisplay {
  /** ":N" */
  readonly display: string;
  stop(): Promise<void>;
}

/** Whether a program is on PATH (without running it). */
export function isInstalled(program: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status === 0;
}

/**
 * Starts `Xvfb -displayfd`: the server picks a free display number itself and writes it to the
 * pipe once it accepts connections, so there is no guessing and no race with other servers.
 */
export function startXvfb(screen = '1280x800x24', timeoutMs = 10_000): Promise<VirtualDisplay> {
  return new Promise((resolve, reject) => {
    const server: ChildProcess = spawn('Xvfb', ['-displayfd', '3', '-screen', '0', screen, '-nolisten', 'tcp'], {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let number = '';
    const timer = setTimeout(() => fail(new Error(`Xvfb did not report a display within ${timeoutMs} ms: ${stderr}`)), timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      server.kill('SIGKILL');
      reject(err);
    };
    server.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    server.once('error', fail);
    server.once('exit', (code) => fail(new Error(`Xvfb exited with ${code}: ${stderr}`)));
    (server.stdio[3] as NodeJS.ReadableStream).on('data', (chunk: Buffer) => {
      number += chunk.toString();
      if (!number.includes('\n')) return;
      clearTimeout(timer);
      server.removeAllListeners('exit');
      const display = `:${number.trim()}`;
      resolve({
        display,
        stop: () =>
          new Promise<void>((done) => {
            if (server.exitCode !== null || server.signalCode !== null) return done();
            server.once('exit', () => done());
            server.kill('SIGTERM');
            setTimeout(() => server.kill('SIGKILL'), 2000).unref();
          }),
      });
    });
  });
}
