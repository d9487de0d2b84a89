import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startProcess, workspaceRoot, type AppProcess } from '@camstream/testkit';

// A person's first run, the way they run it: in a terminal, not in CI, no display here.
const nxJson = path.join(workspaceRoot, 'nx.json');
const asAPerson = { DISPLAY: undefined, WAYLAND_DISPLAY: undefined, CI: 'false', NX_DAEMON: 'false' };

/** Runs `command` in a pseudo-terminal (util-linux `script`), as a terminal would; stdin is empty. */
function inTerminal(command: string, env: Record<string, string | undefined> = asAPerson): AppProcess {
  return startProcess('script', ['--quiet', '--return', '--flush', '--command', command, '/dev/null'], { env, name: command });
}

it('in a terminal, nx asks no question before it runs (nx.json sets analytics)', async () => {
  const before = readFileSync(nxJson, 'utf8');
  await using nx = inTerminal('node_modules/.bin/nx show projects');
  // Unanswered, Nx's "Share usage data with the Nx team?" would wait here for ever.
  await nx.waitForLine(/^sender$/, { timeoutMs: 60_000 });
  expect((await nx.waitForExit(30_000)).code).toBe(0);
  expect(nx.outputLines.join('\n')).not.toMatch(/usage data|analytics/i);
  expect(readFileSync(nxJson, 'utf8')).toBe(before);
});
