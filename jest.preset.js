// Shared jest settings. isolatedModules in tsconfig makes ts-jest transpile only: type checking
// is the build target's job.

// What loadOpenCV does in a real process; jest's sandboxed process.env never reaches the C
// library, so set it here, before the workers start, or OpenCV's WARN lines fill the output.
process.env.OPENCV_LOG_LEVEL ??= 'ERROR';

module.exports = {
  testEnvironment: 'node',
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.spec.json' }],
  },
  // The OpenCV addon is a .node file, which jest only resolves when asked to.
  moduleFileExtensions: ['ts', 'js', 'json', 'node'],
  testMatch: ['<rootDir>/src/**/*.spec.ts', '<rootDir>/test/**/*.spec.ts'],
  // Shared 2-core machines: a test that opens windows or processes can wait on the CPU for a while.
  testTimeout: 30_000,
};
