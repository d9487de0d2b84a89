// Before any test starts an app: bundle the apps from the sources as they are now, so that a
// test never runs an old or missing packages/<app>/dist bundle, also when jest runs directly
// (`npx nx run e2e:test` has built them already, with a type check; bundling is under a second).
const { execFileSync } = require('node:child_process');
const path = require('node:path');

module.exports = () => {
  execFileSync(process.execPath, [path.join(__dirname, '..', '..', 'scripts', 'bundle-apps.js')], { stdio: 'inherit' });
};
