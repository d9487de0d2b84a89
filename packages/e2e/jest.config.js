module.exports = {
  ...require('../../jest.preset.js'),
  displayName: 'e2e',
  rootDir: __dirname,
  // Real processes and sockets: one file at a time keeps a 2-core machine from starving them.
  maxWorkers: 1,
  testTimeout: 60_000,
  globalSetup: '<rootDir>/bundle-apps.global-setup.js',
};
