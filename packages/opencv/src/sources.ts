import type { FrameSource } from '@camstream/media';
import { openCamera, openFile, openUrl, type SourceOptions } from './capture-source';
import { TEST_PATTERN_DEFAULTS, TestPatternSource } from './test-pattern';

export type SourceSpec =
  | { readonly kind: 'test-pattern' }
  | { readonly kind: 'camera'; readonly index: number }
  | { readonly kind: 'url'; readonly url: string }
  | { readonly kind: 'file'; readonly path: string };

/**
 * What a source argument means:
 * - `test`, `pattern` or `test-pattern`: the built-in test pattern
 * - `0`, `camera:0` or `/dev/video0`: a camera by index
 * - `scheme://...` (rtsp, http, https, udp, ...): a network stream
 * - anything else: a video file path
 */
export function parseSourceSpec(spec: string): SourceSpec {
  const trimmed = spec.trim();
  if (/^(test|pattern|test-pattern)$/i.test(trimmed)) return { kind: 'test-pattern' };
  const camera = /^(?:camera:|\/dev\/video)?(\d+)$/i.exec(trimmed);
  if (camera) return { kind: 'camera', index: Number(camera[1]) };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) return { kind: 'url', url: trimmed };
  return { kind: 'file', path: spec };
}

/** Opens a frame source; see parseSourceSpec for what `spec` may be. Errors name the source. */
export async function openSource(spec: string, options: SourceOptions = {}): Promise<FrameSource> {
  checkOptions(options);
  const parsed = parseSourceSpec(spec);
  switch (parsed.kind) {
    case 'test-pattern':
      return new TestPatternSource(
        options.width ?? (options.height ? Math.round((options.height * 16) / 9) : TEST_PATTERN_DEFAULTS.width),
        options.height ?? (options.width ? Math.round((options.width * 9) / 16) : TEST_PATTERN_DEFAULTS.height),
        options.fps ?? TEST_PATTERN_DEFAULTS.fps,
      );
    case 'camera':
      return openCamera(parsed.index, options);
    case 'url':
      return openUrl(parsed.url, options);
    case 'file':
      return openFile(parsed.path, options);
  }
}

function checkOptions({ width, height, fps }: SourceOptions): void {
  for (const [name, value] of [['width', width], ['height', height]] as const) {
    if (value !== undefined && (!Number.isInteger(value) || value <= 0)) {
      throw new RangeError(`${name} must be a positive whole number, got ${value}`);
    }
  }
  if (fps !== undefined && (!Number.isFinite(fps) || fps < 0)) throw new RangeError(`fps must be 0 or more, got ${fps}`);
}
