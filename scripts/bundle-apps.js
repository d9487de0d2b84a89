#!/usr/bin/env node
'use strict';
// Bundles each app into packages/<app>/dist/camstream-<app>.js, the file its launcher
// (packages/<app>/bin/camstream-<app>) runs: one JavaScript file, so that starting an app costs
// neither a TypeScript compile nor hundreds of module look-ups. Type checking is the other half
// of the apps' `build` target (tsc --noEmit); this only transpiles and bundles, in well under a
// second, which is why scripts/setup.sh can run it every time.
//   node scripts/bundle-apps.js [sender] [receiver] [call]   (default: all three)
const path = require('node:path');
const esbuild = require('esbuild');

const root = path.resolve(__dirname, '..');
const APPS = ['sender', 'receiver', 'call'];

/** Native addons stay outside the bundle: node loads them (and their .node files) from node_modules. */
// The browser package's page files are found through its package.json at run time.
const EXTERNAL = ['@u4/opencv4nodejs', '@u4/opencv-build', '@julusian/jpeg-turbo', '@camstream/browser/package.json'];

/**
 * Small bundles an app's launcher loads before the app itself: the receiver's starts an H.264
 * decoder process while the app loads (packages/receiver/src/decoder-ahead.ts).
 */
const EARLY = { receiver: ['decoder-ahead'] };

function bundleOptions(app, entry = 'cli', outName = `camstream-${app}`) {
  return {
    entryPoints: [path.join(root, 'packages', app, 'src', `${entry}.ts`)],
    outfile: path.join(root, 'packages', app, 'dist', `${outName}.js`),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: EXTERNAL,
    // The apps import() their heavy modules lazily (so that --help answers at once). Left as
    // import(), Node would start its ES module loader for them (about 80 ms); as require()
    // they load like the rest.
    supported: { 'dynamic-import': false },
    tsconfig: path.join(root, 'packages', app, 'tsconfig.json'),
    // Error names and messages may quote class and function names: keep them as written.
    keepNames: true,
    sourcemap: 'linked',
    sourcesContent: false,
    logLevel: 'warning',
  };
}

async function main() {
  const requested = process.argv.slice(2);
  const unknown = requested.filter((app) => !APPS.includes(app));
  if (unknown.length) {
    process.stderr.write(`bundle-apps: unknown app ${unknown.join(', ')} (known: ${APPS.join(', ')})\n`);
    process.exit(2);
  }
  const apps = requested.length ? requested : APPS;
  const builds = apps.flatMap((app) => [bundleOptions(app), ...(EARLY[app] ?? []).map((entry) => bundleOptions(app, entry, entry))]);
  await Promise.all(builds.map((options) => esbuild.build(options)));
}

main().catch((err) => {
  // esbuild has printed the details already; say what failed and exit non-zero.
  process.stderr.write(`bundle-apps: ${err.message.split('\n')[0]}\n`);
  process.exit(1);
});
