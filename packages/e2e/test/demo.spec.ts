import { readFileSync } from 'node:fs';
import path from 'node:path';
import { freePort, startProcess, workspaceRoot, type AppProcess } from '@camstream/testkit';

// A person's first run, the way they run it: in a terminal, not in CI, no display here.
const nxJson = path.join(workspaceRoot, 'nx.json');
const asAPerson = { DISPLAY: undefined, WAYLAND_DISPLAY: undefined, CI: 'false', NX_DAEMON: 'false' };

/** Runs `command` in a pseudo-terminal (util-linux `script`), as a terminal would; stdin is empty. */
function inTerminal(command: string, env: Record<string, string | undefined> = asAPerson): AppProcess {
  return startProcess('script', ['--quiet', '--return', '--flush', '--command', command, '/dev/null'], { env, name: command });
}

/** The summary line, and the lines printed after it: the demo must end with the apps' own lines. */
function afterSummary(lines: readonly string[]): { summary: string; rest: string[] } {
  const at = lines.findLastIndex((line) => line.startsWith('summary: received '));
  if (at === -1) throw new Error(`no receiver summary in:\n${lines.join('\n')}`);
  return { summary: lines[at]!, rest: lines.slice(at + 1).filter((line) => line.trim() !== '') };
}

it('in a terminal, nx asks no question before it runs (nx.json sets analytics)', async () => {
  const before = readFileSync(nxJson, 'utf8');
  await using nx = inTerminal('node_modules/.bin/nx show projects');
  // Unanswered, Nx's "Share usage data with the Nx team?" would wait here for ever.
  await nx.waitForLine(/^sender$/, { timeoutMs: 50_000 });
  expect((await nx.waitForExit(10_000)).code).toBe(0);
  expect(nx.outputLines.join('\n')).not.toMatch(/usage data|analytics/i);
  expect(readFileSync(nxJson, 'utf8')).toBe(before);
});

it('DEMO_SECONDS=3 bash scripts/demo.sh in a terminal streams, asks nothing and ends with the apps\' lines, exit 0', async () => {
  const before = readFileSync(nxJson, 'utf8');
  const port = await freePort();
  await using demo = inTerminal(`DEMO_SECONDS=3 DEMO_PORT=${port} bash scripts/demo.sh`);
  expect(await demo.waitForExit(120_000)).toEqual({ code: 0, signal: null });
  // A terminal shows both streams as one: the pseudo-terminal delivers them on stdout.
  const { summary, rest } = afterSummary(demo.stdoutLines);
  expect(summary).toMatch(/gaps 0, corrupt 0, total [1-9]\d* received \/ [1-9]\d* shown$/);
  for (const line of rest) expect(line).toMatch(/^\[sender\] |^sending /);
  expect(rest.at(-1)).toBe('[sender] sender shutting down');
  expect(demo.outputLines.join('\n')).not.toMatch(/usage data|Tasks stopped|did not complete|NX /);
  expect(readFileSync(nxJson, 'utf8')).toBe(before);
}, 150_000);

it('Ctrl-C (SIGINT to the demo\'s process group) stops both apps in order: their own closing lines, exit 0', async () => {
  const port = await freePort();
  // startProcess gives the demo its own process group, as a shell gives a foreground job.
  await using demo = startProcess('bash', ['scripts/demo.sh'], { env: { ...asAPerson, DEMO_PORT: String(port) } });
  await demo.waitForLine(/^received .* total [1-9]/, { stream: 'stdout', timeoutMs: 90_000 });
  demo.signal('SIGINT');
  expect(await demo.waitForExit(30_000)).toEqual({ code: 0, signal: null });
  const { summary } = afterSummary(demo.stdoutLines);
  expect(summary).toMatch(/gaps 0, corrupt 0, total [1-9]\d* received \/ [1-9]\d* shown$/);
  // Each app heard Ctrl-C and shut down by itself; the receiver first, so its summary covers the stream.
  const closing = demo.stderrLines.filter((line) => /SIGINT|shutting down|left:/.test(line));
  expect(closing).toEqual([
    '[receiver] SIGINT: stopping',
    expect.stringMatching(/^\[sender\] viewer #1 \(.*\) left: \d+ frames sent/),
    '[sender] SIGINT: stopping',
    '[sender] sender shutting down',
  ]);
  expect(demo.stderrLines.at(-1)).toBe('[sender] sender shutting down');
}, 150_000);
