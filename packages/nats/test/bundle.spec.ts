import { mkdtempSync, rmSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { build } from 'esbuild';
import { startNatsServer, startProcess, workspaceRoot } from '@camstream/testkit';

// The apps ship as one esbuild bundle each (scripts/bundle-apps.js); the NATS client goes into
// them. Same settings here, on an entry that round-trips a signed frame through a real server.
describe('bundling', () => {
  it('bundles the NATS transport into one JavaScript file that works without node_modules/@camstream', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'camstream-nats-bundle-'));
    try {
      const outfile = path.join(dir, 'bundle.js');
      await build({
        entryPoints: [path.join(__dirname, 'fixtures', 'bundle-entry.ts')],
        outfile,
        bundle: true,
        platform: 'node',
        target: 'node20',
        format: 'cjs',
        supported: { 'dynamic-import': false },
        tsconfig: path.join(workspaceRoot, 'packages', 'nats', 'tsconfig.json'),
        keepNames: true,
        logLevel: 'silent',
      });
      expect(statSync(outfile).size).toBeGreaterThan(100_000);
      await using server = await startNatsServer();
      // Run from the bundle's own directory: nothing it needs may come from the workspace.
      await using bundled = startProcess(process.execPath, [outfile, server.url], { cwd: dir, name: 'bundled' });
      expect(await bundled.waitForLine(/^received /, { stream: 'stdout' })).toBe('received 0000ff00ff00');
      expect(await bundled.waitForExit()).toEqual({ code: 0, signal: null });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
