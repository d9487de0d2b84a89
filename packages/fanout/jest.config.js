module.exports = {
  ...require('../../jest.preset.js'),
  displayName: 'fanout',
  rootDir: __dirname,
};
