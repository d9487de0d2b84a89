module.exports = {
  ...require('../../jest.preset.js'),
  displayName: 'opencv',
  rootDir: __dirname,
};
