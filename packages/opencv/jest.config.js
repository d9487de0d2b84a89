module.exports = {
  ...require('../../jest.preset.js'),
  displayName: 'opencv',
  rootDir: __dirname,
  // Windows, FFmpeg and GStreamer in parallel workers starve each other on 2 cores.
  maxWorkers: 1,
};
