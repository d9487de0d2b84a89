import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { AppProcess, startProcess, workspaceRoot } from '../src';
import { appCommand } from '../src/processes';

const fixture = path.join(__dirname, 'fixtures', 'chatty.js');

function startFixture(...args: string[]): AppProcess {
  return startProcess(process.execPath, [fixture, ...args], { name: 'chatty' });
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    expect((error as NodeJS.ErrnoException).code).toBe('ESRCH');
    return false;
  }
  // A zombie (dead, waiting for init to reap it) is not running either.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

describe('startProcess / AppProcess', () => {
  it('collects output line by line and finds lines with waitForLine', async () => {
    await using child = startFixture('--lines', 'alpha,beta,gamma', '--stderr', 'oops');
    expect(await child.waitForLine(/^beta$/)).toBe('beta');
    expect(await child.waitForLine(/oops/, { stream: 'stderr' })).toBe('oops');
    // Lines printed earlier count, unless newOnly.
    expect(await child.waitForLine(/alpha/, { stream: 'stdout' })).toBe('alpha');
    await expect(child.waitForLine(/alpha/, { newOnly: true, timeoutMs: 200 })).rejects.toThrow(/within 200 ms/);
    expect(child.stdoutLines).toEqual(['alpha', 'beta', 'gamma', `started ${child.pid}`]);
    expect(child.stderrLines).toEqual(['oops']);
  });

  it('a timeout error quotes the recent output', async () => {
    await using child = startFixture('--lines', 'first line,second line');
    await child.waitForLine(/second/);
    const error = (await child.waitForLine(/never printed/, { timeoutMs: 300 }).catch((e: unknown) => e)) as Error;
    expect(error.message).toMatch(/chatty \(pid \d+\) printed no line matching \/never printed\/ on output within 300 ms/);
    expect(error.message).toContain('[stdout] first line');
    expect(error.message).toContain('[stdout] second line');
  });

  it('waitForLine rejects as soon as the process exits without the line', async () => {
    await using child = startFixture('--lines', 'bye', '--exit-after', '50');
    // The reason proves it: the exit, not the 15 s timeout (whose error says "within 15000 ms").
    const error = (await child.waitForLine(/never/, { timeoutMs: 15_000 }).catch((e: unknown) => e)) as Error;
    expect(error.message).toMatch(/exited \(code 3\)[\s\S]*bye/);
    expect(error.message).not.toMatch(/within 15000 ms/);
    expect(await child.waitForExit(1000)).toEqual({ code: 3, signal: null });
  });

  it('keeps a last line without a newline', async () => {
    await using child = startFixture('--partial', 'no newline');
    await child.waitForExit(5000);
    expect(await child.waitForLine(/no newline/, { timeoutMs: 1000 })).toBe('no newline');
  });

  it('waitForExit times out with the output in the error', async () => {
    await using child = startFixture('--lines', 'still here');
    await child.waitForLine(/still here/);
    await expect(child.waitForExit(200)).rejects.toThrow(/did not exit within 200 ms[\s\S]*still here/);
  });

  it('kill() stops a process with SIGTERM', async () => {
    const child = startFixture();
    await child.waitForLine(/started/);
    expect(await child.kill()).toEqual({ code: 0, signal: null });
    expect(child.stdoutLines).toContain('got SIGTERM');
    expect(isRunning(child.pid)).toBe(false);
  });

  it('kill() escalates to SIGKILL when SIGTERM is ignored', async () => {
    const child = startFixture('--ignore-term');
    await child.waitForLine(/started/);
    const started = Date.now();
    expect(await child.kill()).toEqual({ code: null, signal: 'SIGKILL' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(2500);
    expect(child.stdoutLines).toContain('ignoring SIGTERM');
    expect(isRunning(child.pid)).toBe(false);
  });

  it('asyncDispose kills the whole process group, grandchildren included', async () => {
    let leader = 0;
    let grandchild = 0;
    {
      await using child = startFixture('--child');
      leader = child.pid;
      grandchild = Number((await child.waitForLine(/^child \d+$/)).split(' ')[1]);
      expect(isRunning(grandchild)).toBe(true);
    }
    expect(isRunning(leader)).toBe(false);
    // The grandchild ignores SIGTERM, so only the SIGKILL to the group stopped it.
    expect(isRunning(grandchild)).toBe(false);
  });

  it('signal() delivers a signal without killing', async () => {
    await using child = startFixture('--ignore-term');
    await child.waitForLine(/started/);
    child.signal('SIGTERM');
    await child.waitForLine(/ignoring SIGTERM/, { timeoutMs: 5000 });
    expect(child.exitedWith).toBeUndefined();
    expect(await child.kill(200)).toEqual({ code: null, signal: 'SIGKILL' });
  });

  it('passes environment changes and the working directory', async () => {
    await using child = startProcess(process.execPath, ['-e', 'console.log(process.env.TESTKIT_VALUE, process.env.HOME === undefined, process.cwd())'], {
      env: { TESTKIT_VALUE: 'forty-two', HOME: undefined },
      cwd: __dirname,
    });
    expect(await child.waitForLine(/forty-two/)).toBe(`forty-two true ${__dirname}`);
  });

  it.each([
    ['exits', []],
    ['is killed with SIGKILL', ['--sigkill']],
  ])('kills processes left running when the test process %s', async (_how, flags) => {
    await using parent = startProcess(process.execPath, [path.join(__dirname, 'fixtures', 'leaves-a-process.js'), ...flags]);
    const line = await parent.waitForLine(/^left running \d+$/, { timeoutMs: 30_000 });
    await parent.waitForExit(10_000);
    const orphan = Number(line.split(' ')[2]);
    const deadline = Date.now() + 5000;
    while (isRunning(orphan) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(isRunning(orphan)).toBe(false);
  });

  it('throws when the command does not exist', () => {
    expect(() => startProcess('/nonexistent/command-for-testkit')).toThrow(/could not start/);
  });
});

describe('startApp', () => {
  it('runs the bin script from the workspace root, or nx run <app>:serve', () => {
    expect(appCommand('sender', ['--port', '5000'])).toEqual({
      command: process.execPath,
      args: [path.join(workspaceRoot, 'packages/sender/bin/camstream-sender'), '--port', '5000'],
    });
    expect(appCommand('receiver', ['--window'], true)).toEqual({
      command: path.join(workspaceRoot, 'node_modules/.bin/nx'),
      args: ['run', 'receiver:serve', '--', '--window'],
    });
    expect(path.join(workspaceRoot, 'packages', 'testkit', 'test')).toBe(__dirname);
  });
});
