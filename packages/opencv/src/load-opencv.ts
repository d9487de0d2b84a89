import { dirname, join } from 'node:path';

/** The whole `@u4/opencv4nodejs` module, as its typings describe it. */
export type OpenCV = typeof import('@u4/opencv4nodejs');

/** The native addon could not be loaded (not built, or built against another OpenCV/Node). */
export class OpenCVNotAvailableError extends Error {
  readonly code = 'ERR_OPENCV_NOT_BUILT';

  constructor(cause: unknown) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    super(`OpenCV is not available: the @u4/opencv4nodejs native addon is not built or does not load ` +
      `(${detail.split('\n')[0]}). Run \`npm run setup\` at the repository root.`, { cause });
    this.name = 'OpenCVNotAvailableError';
  }
}

let loaded: OpenCV | undefined;

/**
 * Loads OpenCV once, on first use, so that importing this package stays cheap and apps that
 * never touch a camera, codec or window never load the 6 MB addon.
 *
 * It does what the main module of `@u4/opencv4nodejs` does (cjs/lib/opencv4nodejs.js): require
 * the native binding, then add the package's promise-returning `*Async` functions and its
 * JavaScript helpers. It skips that module's loader (cvloader.js), which first builds an
 * OpenCVBuilder of `@u4/opencv-build` only to look for the binding: about 250 ms of every
 * start on this machine, and coloured `Info:` lines on stdout that a CLI must not print.
 */
export function loadOpenCV(): OpenCV {
  if (loaded) return loaded;
  // OpenCV's own logger writes WARN lines to stderr for every failed open (GStreamer, V4L2);
  // we turn failures into clear errors, so default it to errors only. An explicit setting wins.
  process.env['OPENCV_LOG_LEVEL'] ??= 'ERROR';
  try {
    const { binding, libDir } = openCVModulePaths();
    /* eslint-disable @typescript-eslint/no-require-imports */
    const base = require(binding) as object;
    const promisify = (require(join(libDir, 'promisify.js')) as { default: (cv: object) => object }).default;
    const extend = (require(join(libDir, 'ext', 'index.js')) as { default: (cv: object) => OpenCV }).default;
    /* eslint-enable @typescript-eslint/no-require-imports */
    loaded = extend(promisify(base));
  } catch (err) {
    throw new OpenCVNotAvailableError(err);
  }
  return loaded;
}

/**
 * Where the native binding of `@u4/opencv4nodejs` and the package's JavaScript (its cjs/lib
 * folder) are, as absolute paths: the package exports only its main module, so they are found
 * from there. Also used by code that loads OpenCV elsewhere (the recorder's child process).
 */
export function openCVModulePaths(): { binding: string; libDir: string } {
  const libDir = dirname(require.resolve('@u4/opencv4nodejs'));
  return { binding: join(libDir, '..', '..', 'build', 'Release', 'opencv4nodejs.node'), libDir };
}
