import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startProcess, workspaceRoot, type AppProcess } from '@camstream/testkit';

// The README's commands as a newcomer runs them in a fresh clone: the files under version
// control (as they are now, so uncommitted work counts) and the installed packages, but no
// tmp/ folder, no built apps and no Nx cache.
let checkout: string;

beforeAll(() => {
  checkout = mkdtempSync(path.join(tmpdir(), 'camstream-fresh-'));
  const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: workspaceRoot, encoding: 'utf8' });
  for (const file of listed.split('\0')) {
    if (!file || !existsSync(path.join(workspaceRoot, file))) continue; // deleted, not yet committed
    mkdirSync(path.dirname(path.join(checkout, file)), { recursive: true });
    copyFileSync(path.join(workspaceRoot, file), path.join(checkout, file));
  }
  // What `bash scripts/setup.sh` installs, without installing it again.
  symlinkSync(path.join(workspaceRoot, 'node_modules'), path.join(checkout, 'node_modules'));
});
afterAll(() => rmSync(checkout, { recursive: true, force: true }));

function inCheckout(command: string, args: string[]): AppProcess {
  return startProcess(command, args, { cwd: checkout, env: { NX_DAEMON: 'false', NX_TUI: 'false', NX_NO_CLOUD: 'true', DISPLAY: undefined } });
}

it('npx nx run <project>:test passes on its own (its JSON report folder did not exist)', async () => {
  expect(existsSync(path.join(checkout, 'tmp'))).toBe(false);
  // The README shows protocol:test; media has the same target and the fewest tests.
  await using nx = inCheckout(path.join(checkout, 'node_modules', '.bin', 'nx'), ['run', 'media:test']);
  expect((await nx.waitForExit(150_000)).code).toBe(0);
  expect(existsSync(path.join(checkout, 'tmp', 'jest', 'media.json'))).toBe(true);
}, 180_000);

it('an app\'s launcher, before any build, says which command builds it', async () => {
  await using sender = inCheckout(process.execPath, ['packages/sender/bin/camstream-sender', '--help']);
  expect((await sender.waitForExit(10_000)).code).toBe(1);
  expect(sender.stderrLines.join('\n')).toMatch(/the app is not built \(.*packages\/sender\/dist\/camstream-sender\.js is missing\)/);
  expect(sender.stderrLines.join('\n')).toMatch(/npx nx run sender:build/);
});

it('npx nx run receiver:serve builds the app first (type check and bundle), then runs it', async () => {
  await using nx = inCheckout(path.join(checkout, 'node_modules', '.bin', 'nx'), ['run', 'receiver:serve', '--', '--help']);
  expect((await nx.waitForExit(150_000)).code).toBe(0);
  expect(nx.stdoutLines.join('\n')).toMatch(/Usage: camstream-receiver/);
  expect(existsSync(path.join(checkout, 'packages', 'receiver', 'dist', 'camstream-receiver.js'))).toBe(true);
}, 180_000);
