module.exports = {
  ...require('../../jest.preset.js'),
  displayName: 'receiver',
  rootDir: __dirname,
};
