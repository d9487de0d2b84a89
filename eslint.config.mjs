// Lint rules plus the architecture, enforced: Nx's module-boundary rule forbids the imports
// that would blur the package map in the README.
import nx from '@nx/eslint-plugin';
import globals from 'globals';
import tseslint from 'typescript-eslint';

// Native image libraries: only the adapter package may load them.
const notOpenCV = ['@u4/opencv4nodejs', '@julusian/jpeg-turbo'];

export default tseslint.config(
  // JavaScript is not linted, except the browser page's own script (a real source file, see below).
  { ignores: ['**/node_modules/**', '**/dist/**', 'tmp/**', '**/*.js', '**/*.mjs', '**/*.cjs', '!packages/browser/page/*.js'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { '@nx': nx },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: false,
          banTransitiveDependencies: true,
          // Not a module: where the browser package's page files are, looked up at run time (an app
          // bundle runs its code from the app's dist folder); the rule would read it as a self-import.
          allow: ['@camstream/browser/package.json'],
          depConstraints: [
            // protocol: bytes and schemas only, nothing internal, never OpenCV.
            { sourceTag: 'scope:protocol', onlyDependOnLibsWithTags: [], bannedExternalImports: notOpenCV },
            { sourceTag: 'scope:media', onlyDependOnLibsWithTags: [], bannedExternalImports: notOpenCV },
            // tutorial-wire: the tutorial's pickle wire, bytes only like protocol: nothing internal, never OpenCV.
            { sourceTag: 'scope:tutorial-wire', onlyDependOnLibsWithTags: [], bannedExternalImports: notOpenCV },
            // fanout: encode once, deliver to many; no sockets of its own, no OpenCV.
            { sourceTag: 'scope:fanout', onlyDependOnLibsWithTags: ['scope:media'], bannedExternalImports: notOpenCV },
            // browser: the server and page for browsers; codecs come in through media's FrameCodec.
            { sourceTag: 'scope:browser', onlyDependOnLibsWithTags: ['scope:protocol', 'scope:media', 'scope:fanout'], bannedExternalImports: notOpenCV },
            // nats: the NATS transport (frames and announcements on a bus); bytes, never images.
            { sourceTag: 'scope:nats', onlyDependOnLibsWithTags: ['scope:protocol', 'scope:media'], bannedExternalImports: notOpenCV },
            // metrics: the Prometheus text format and a /metrics server; nothing internal.
            { sourceTag: 'scope:metrics', onlyDependOnLibsWithTags: [], bannedExternalImports: notOpenCV },
            // the one place that may import OpenCV.
            { sourceTag: 'scope:opencv', onlyDependOnLibsWithTags: ['scope:protocol', 'scope:media'] },
            // the one place that runs ffmpeg and ffprobe (H.264, MP4); never OpenCV.
            { sourceTag: 'scope:ffmpeg', onlyDependOnLibsWithTags: ['scope:protocol', 'scope:media'], bannedExternalImports: notOpenCV },
            { sourceTag: 'scope:testkit', onlyDependOnLibsWithTags: ['scope:protocol', 'scope:media'], bannedExternalImports: notOpenCV },
            // apps: production code never reaches for the testkit (tests are allowed below).
            { sourceTag: 'scope:app', onlyDependOnLibsWithTags: ['scope:protocol', 'scope:media', 'scope:fanout', 'scope:opencv', 'scope:ffmpeg', 'scope:browser', 'scope:tutorial-wire', 'scope:nats', 'scope:metrics'], bannedExternalImports: notOpenCV },
            // camstream-call: a sender and a receiver in one process, built from theirs (sender and
            // receiver are libraries with launchers, so that it may import them; nothing else may).
            { sourceTag: 'scope:call', onlyDependOnLibsWithTags: ['scope:protocol', 'scope:media', 'scope:fanout', 'scope:opencv', 'scope:browser', 'scope:sender', 'scope:receiver'], bannedExternalImports: notOpenCV },
          ],
        },
      ],
    },
  },
  {
    // Tests, benchmarks and scripts may use the testkit (and the adapter, to check real pixels).
    files: ['**/*.spec.ts', '**/test/**/*.ts', '**/bench/**/*.ts'],
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: false,
          depConstraints: [
            { sourceTag: 'scope:protocol', onlyDependOnLibsWithTags: [], bannedExternalImports: notOpenCV },
            { sourceTag: 'scope:media', onlyDependOnLibsWithTags: [] },
            { sourceTag: 'scope:tutorial-wire', onlyDependOnLibsWithTags: [], bannedExternalImports: notOpenCV },
            { sourceTag: 'scope:fanout', onlyDependOnLibsWithTags: ['scope:media', 'scope:testkit', 'scope:opencv'] },
            { sourceTag: 'scope:browser', onlyDependOnLibsWithTags: ['scope:protocol', 'scope:media', 'scope:fanout', 'scope:testkit', 'scope:opencv'] },
            { sourceTag: 'scope:nats', onlyDependOnLibsWithTags: ['scope:protocol', 'scope:media', 'scope:testkit'] },
            { sourceTag: 'scope:metrics', onlyDependOnLibsWithTags: ['scope:testkit'] },
            { sourceTag: 'scope:opencv', onlyDependOnLibsWithTags: ['scope:protocol', 'scope:media', 'scope:testkit'] },
            // the adapter's tests and bench check pictures with the testkit and compare against OpenCV's JPEG.
            { sourceTag: 'scope:ffmpeg', onlyDependOnLibsWithTags: ['scope:protocol', 'scope:media', 'scope:testkit', 'scope:opencv'] },
            { sourceTag: 'scope:testkit', onlyDependOnLibsWithTags: ['scope:protocol', 'scope:media', 'scope:opencv'] },
            { sourceTag: 'scope:app', onlyDependOnLibsWithTags: ['scope:protocol', 'scope:media', 'scope:fanout', 'scope:opencv', 'scope:ffmpeg', 'scope:browser', 'scope:testkit', 'scope:tutorial-wire', 'scope:nats', 'scope:metrics'] },
            { sourceTag: 'scope:call', onlyDependOnLibsWithTags: ['scope:protocol', 'scope:media', 'scope:fanout', 'scope:opencv', 'scope:browser', 'scope:sender', 'scope:receiver', 'scope:testkit'] },
          ],
        },
      ],
    },
  },
  {
    // The browser page's script: an ES module run by browsers, type-checked by packages/browser/page/tsconfig.json.
    files: ['packages/browser/page/*.js'],
    languageOptions: { sourceType: 'module', globals: { ...globals.browser } },
  },
  {
    // End-to-end tests and the benchmark drive both apps; Nx's rule forbids importing applications
    // outright, which is right everywhere else.
    files: ['packages/e2e/**/*.ts', 'packages/bench/**/*.ts'],
    rules: { '@nx/enforce-module-boundaries': 'off' },
  },
);
