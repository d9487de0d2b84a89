module.exports = {
  ...require('../../jest.preset.js'),
  displayName: 'call',
  rootDir: __dirname,
};
