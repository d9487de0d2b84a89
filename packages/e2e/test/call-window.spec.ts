import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { RawImage } from '@camstream/media';
import { freePort, sendKey, startApp, startXvfb } from '@camstream/testkit';
import { findOnScreen, hasXvfb, synthClip, type SynthClip } from './tutorial-peers';

// Two camstream-call processes on loopback, A with its window under Xvfb, B headless. Each side
// streams synth.py's deterministic frames from a lossless file, raw, so A's window shows B's
// frames pixel for pixel (with A's own inset in a corner). q in A's window ends both of A's
// directions: B's receiver hears A's bye and A's receiver leaves B's sender.

let workDir: string;
beforeAll(() => {
  workDir = mkdtempSync(path.join(tmpdir(), 'camstream-call-e2e-'));
});
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

function losslessVideo(clip: SynthClip): string {
  const { width, height } = clip.frames[0]!;
  const file = clip.file.replace(/\.bgr$/, '.avi');
  execFileSync('ffmpeg', ['-loglevel', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'bgr24', '-s', `${width}x${height}`, '-r', '30', '-i', clip.file, '-c:v', 'rawvideo', '-pix_fmt', 'bgr24', file]);
  return file;
}

/** The top half of a frame: the inset covers part of its bottom-right corner in the window. */
function topHalf(frame: RawImage): RawImage {
  const height = Math.floor(frame.height / 2);
  return { width: frame.width, height, channels: 3, data: frame.data.subarray(0, frame.width * height * 3) };
}

(hasXvfb ? it : it.skip)("shows the partner's frames in the call window, and q there ends both directions of that side", async () => {
  // Two sizes, so that neither side could be showing its own frames.
  const clipA = synthClip(mkdtempSync(path.join(workDir, 'a-')), 320, 240);
  const clipB = synthClip(mkdtempSync(path.join(workDir, 'b-')), 352, 288);
  const [portA, portB] = [await freePort(), await freePort()];
  await using xvfb = await startXvfb();
  const common = ['--codec', 'raw', '--loop', '--quiet'];
  await using a = startApp('call', ['--port', String(portA), '--partner', `127.0.0.1:${portB}`, '--source', losslessVideo(clipA), '--name', 'side A', '--display', 'on', ...common], {
    env: { DISPLAY: xvfb.display },
  });
  await using b = startApp('call', ['--port', String(portB), '--partner', `127.0.0.1:${portA}`, '--source', losslessVideo(clipB), '--name', 'side B', '--display', 'off', ...common], {
    env: { DISPLAY: undefined, WAYLAND_DISPLAY: undefined },
  });
  await a.waitForLine(/^LISTENING AT: /, { stream: 'stdout', timeoutMs: 30_000 });
  await b.waitForLine(/^LISTENING AT: /, { stream: 'stdout', timeoutMs: 30_000 });

  // B's frames, exactly, in A's window.
  const wanted = clipB.frames.map(topHalf);
  const onScreen = async () => {
    const screen = await xvfb.screenshot();
    return wanted.some((frame) => findOnScreen(screen, frame) !== null);
  };
  let seen = await onScreen();
  const deadline = Date.now() + 30_000;
  while (!seen && Date.now() < deadline) seen = await onScreen();
  expect(seen).toBe(true);
  // And A's frames reached B (its receiving half connected to A's sender).
  await b.waitForLine(/\[call\] in: connected to 127\.0\.0\.1:\d+: .* 320x240 raw-bgr/, { stream: 'stderr', timeoutMs: 30_000 });

  await sendKey(xvfb.display, 'camstream call with', 'q');
  expect(await a.waitForExit(15_000)).toEqual({ code: 0, signal: null });
  expect(a.stderrLines.join('\n')).toMatch(/window closed: ending the call \(both directions\)/);
  // Both of A's directions ended: its sender said bye to B's receiver, its receiver left B's sender.
  await b.waitForLine(/\[call\] in: the sender said bye: the call ended/, { stream: 'stderr', timeoutMs: 15_000 });
  await b.waitForLine(/\[call\] out: viewer #\d+ \(side A\) left/, { stream: 'stderr', timeoutMs: 15_000 });
  // B stays, waiting for A to call again.
  expect(b.exitedWith).toBeUndefined();
});
