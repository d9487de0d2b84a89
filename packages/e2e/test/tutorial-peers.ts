import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { RawImage } from '@camstream/media';
import { startProcess, workspaceRoot, type AppProcess } from '@camstream/testkit';

// The tutorial's own Python scripts (vendored in packages/tutorial-wire/fixtures from
// shared/peers) and their deterministic frames, for the tests that run camstream against them.

/** Debian's interpreter, with numpy and OpenCV. */
export const PYTHON = process.env['CAMSTREAM_PYTHON'] ?? '/usr/bin/python3';
export const PEERS = path.join(workspaceRoot, 'packages', 'tutorial-wire', 'fixtures');
export const E2E_FIXTURES = path.join(__dirname, 'fixtures');

/** The frames synth.py makes for width x height (30 by default): what the tutorial's streamer sends, in a loop. */
export interface SynthClip {
  /** Raw BGR frames back to back: seed_streamer.py --frames-file. */
  file: string;
  frames: RawImage[];
  /** MD5 of each frame's bytes, in order. */
  digests: string[];
}

export function synthClip(dir: string, width: number, height: number, count = 30): SynthClip {
  execFileSync(PYTHON, [path.join(PEERS, 'synth.py'), dir, String(width), String(height), String(count)], { stdio: ['ignore', 'ignore', 'inherit'] });
  const file = path.join(dir, `${width}x${height}.bgr`);
  const bytes = readFileSync(file);
  const frameBytes = width * height * 3;
  const frames: RawImage[] = [];
  for (let offset = 0; offset < bytes.length; offset += frameBytes) frames.push({ width, height, channels: 3, data: bytes.subarray(offset, offset + frameBytes) });
  return { file, frames, digests: frames.map((frame) => md5(frame.data)) };
}

export function md5(bytes: Uint8Array): string {
  return createHash('md5').update(bytes).digest('hex');
}

/** seed_streamer.py on a free port (it prints the port it bound), serving the clip's frames. */
export async function startSeedStreamer(clip: SynthClip, port: number, extra: string[] = []): Promise<AppProcess> {
  const { width, height } = clip.frames[0]!;
  const streamer = startProcess(
    PYTHON,
    [path.join(PEERS, 'seed_streamer.py'), '--port', String(port), '--width', String(width), '--height', String(height), '--frames-file', clip.file, ...extra],
    { name: 'seed_streamer.py', env: { PYTHONUNBUFFERED: '1' } },
  );
  await streamer.waitForLine(/^LISTENING AT:/, { stream: 'stdout', timeoutMs: 30_000 });
  return streamer;
}

/**
 * How unlike two images of the same shape are: the share of bytes that differ by more than 48,
 * over every `rowStep`th row and `byteStep`th byte. A lossy copy (Motion JPEG) of a frame stays
 * near 0; another frame of the clip, whose shapes and text moved, is several per cent off (its
 * noise alone would not tell them apart).
 */
export function unlikeness(a: RawImage, b: RawImage, rowStep = 2, byteStep = 1): number {
  const rowBytes = a.width * 3;
  let differing = 0;
  let counted = 0;
  for (let y = 0; y < a.height; y += rowStep) {
    for (let i = y * rowBytes, end = i + rowBytes; i < end; i += byteStep) {
      if (Math.abs(a.data[i]! - b.data[i]!) > 48) differing++;
      counted++;
    }
  }
  return differing / counted;
}

/**
 * The clip frame `image` is (a lossy copy of): ranked on a sparse sample, then the best two
 * compared in full: how unlike the best is, and how unlike the runner-up is.
 */
export function closestFrame(image: RawImage, clip: SynthClip): { index: number; unlikeness: number; runnerUp: number } {
  const ranked = clip.frames.map((frame, index) => ({ index, sampled: unlikeness(image, frame, 8, 7) })).sort((a, b) => a.sampled - b.sampled);
  const best = ranked[0]!;
  const second = ranked[1]!;
  return { index: best.index, unlikeness: unlikeness(image, clip.frames[best.index]!), runnerUp: unlikeness(image, clip.frames[second.index]!) };
}

/**
 * Where `frame` appears on `screen` pixel for pixel (a window showing raw BGR under Xvfb at 24
 * bits is exact), or null. Finds its first row, then compares the whole frame.
 */
export function findOnScreen(screen: RawImage, frame: RawImage): { x: number; y: number } | null {
  const row = frame.data.subarray(0, frame.width * 3);
  const probe = row.subarray(0, Math.min(row.length, 48));
  for (let y = 0; y + frame.height <= screen.height; y++) {
    const line = screen.data.subarray(y * screen.width * 3, (y + 1) * screen.width * 3);
    for (let at = line.indexOf(probe); at >= 0; at = line.indexOf(probe, at + 1)) {
      if (at % 3 !== 0) continue;
      const x = at / 3;
      if (x + frame.width > screen.width) break;
      let same = true;
      for (let r = 0; r < frame.height && same; r++) {
        const start = ((y + r) * screen.width + x) * 3;
        same = screen.data.subarray(start, start + frame.width * 3).equals(frame.data.subarray(r * frame.width * 3, (r + 1) * frame.width * 3));
      }
      if (same) return { x, y };
    }
  }
  return null;
}

export const hasXvfb = (() => {
  try {
    execFileSync('which', ['Xvfb', 'xdotool', 'xwd'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
