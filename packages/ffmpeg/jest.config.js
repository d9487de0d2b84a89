module.exports = {
  ...require('../../jest.preset.js'),
  displayName: 'ffmpeg',
  rootDir: __dirname,
  // Each test runs ffmpeg processes; in parallel workers they starve each other on 2 cores.
  maxWorkers: 1,
};
