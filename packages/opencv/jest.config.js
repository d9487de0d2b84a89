// What loadOpenCV does in a real process; jest's sandboxed process.env never reaches the C
// library, so set it here, before the workers start, or OpenCV's WARN lines fill the output.
process.env.OPENCV_LOG_LEVEL ??= 'ERROR';

module.exports = {
  ...require('../../jest.preset.js'),
  displayName: 'opencv',
  rootDir: __dirname,
  // The OpenCV addon is a .node file, which jest only resolves when asked to.
  moduleFileExtensions: ['ts', 'js', 'json', 'node'],
};
