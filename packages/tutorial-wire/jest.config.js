module.exports = {
  ...require('../../jest.preset.js'),
  displayName: 'tutorial-wire',
  rootDir: __dirname,
};
