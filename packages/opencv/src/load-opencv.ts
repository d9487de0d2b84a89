import { dirname } from 'node:path';

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

interface OpenCVBuildLog {
  silence?: boolean;
}

let loaded: OpenCV | undefined;

/**
 * Loads OpenCV once, on first use, so that importing this package stays cheap and apps that
 * never touch a camera, codec or window never load the 6 MB addon.
 *
 * Requiring the addon prints coloured `Info:` lines (and `Error:` lines when the working
 * directory has no package.json): they come from `@u4/opencv-build`'s `Log.log`, which writes
 * with console.log unless the static flag `Log.silence` is set. We set that flag for the
 * duration of the require, on the very copy of `@u4/opencv-build` that the addon resolves,
 * and put the old value back afterwards.
 */
export function loadOpenCV(): OpenCV {
  if (loaded) return loaded;
  // OpenCV's own logger writes WARN lines to stderr for every failed open (GStreamer, V4L2);
  // we turn failures into clear errors, so default it to errors only. An explicit setting wins.
  process.env['OPENCV_LOG_LEVEL'] ??= 'ERROR';
  const buildLog = findOpenCVBuildLog();
  const previousSilence = buildLog?.silence;
  if (buildLog) buildLog.silence = true;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    loaded = require('@u4/opencv4nodejs') as OpenCV;
  } catch (err) {
    throw new OpenCVNotAvailableError(err);
  } finally {
    if (buildLog) buildLog.silence = previousSilence;
  }
  return loaded;
}

/**
 * Where `@u4/opencv4nodejs` and the `@u4/opencv-build` it uses live (absolute paths), for code
 * that loads OpenCV elsewhere (the recorder's worker thread). buildLog is undefined if absent.
 */
export function openCVModulePaths(): { addon: string; buildLog: string | undefined } {
  const addon = require.resolve('@u4/opencv4nodejs');
  try {
    // Deliberately the addon's own dependency, resolved from the addon's directory.
    // eslint-disable-next-line @nx/enforce-module-boundaries
    return { addon, buildLog: require.resolve('@u4/opencv-build', { paths: [dirname(addon)] }) };
  } catch {
    return { addon, buildLog: undefined };
  }
}

/** The `Log` class of the `@u4/opencv-build` that `@u4/opencv4nodejs` itself requires, if found. */
function findOpenCVBuildLog(): OpenCVBuildLog | undefined {
  try {
    const { buildLog } = openCVModulePaths();
    if (!buildLog) return undefined;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require(buildLog) as { Log?: OpenCVBuildLog }).Log;
  } catch {
    return undefined; // not installed: the addon require will fail with a clear error
  }
}
