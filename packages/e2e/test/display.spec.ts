import { execFileSync } from 'node:child_process';
import type { RawImage } from '@camstream/media';
import { sendKey, startApp, startXvfb, type AppProcess } from '@camstream/testkit';

// As a person sees it: under a real X server (Xvfb) the receiver opens its window, the screen
// shows the sender's test pattern, the picture moves, and q closes it.

/** The test pattern's colour bars along its bottom edge (BGR), left to right. */
const BARS: Array<[number, number, number]> = [
  [235, 235, 235], [16, 235, 235], [235, 235, 16], [16, 235, 16],
  [235, 16, 235], [16, 16, 235], [235, 16, 16], [16, 16, 16],
];

/** Finds a screen row that crosses all eight bars in order; returns where the bars start. */
function findColourBars(shot: RawImage, patternWidth: number): { x: number; y: number } | null {
  const barWidth = patternWidth / BARS.length;
  const close = (o: number, [b, g, r]: [number, number, number]) =>
    Math.abs(shot.data[o]! - b) + Math.abs(shot.data[o + 1]! - g) + Math.abs(shot.data[o + 2]! - r) < 90;
  for (let y = shot.height - 1; y >= 0; y--) {
    for (let x = 0; x + patternWidth <= shot.width; x++) {
      const at = (bar: number) => (y * shot.width + Math.round(x + (bar + 0.5) * barWidth)) * 3;
      if (BARS.every((colour, bar) => close(at(bar), colour))) return { x, y };
    }
  }
  return null;
}

function regionDiffers(a: RawImage, b: RawImage, x0: number, y0: number, w: number, h: number): number {
  let changed = 0;
  for (let y = y0; y < y0 + h; y++) {
    for (let x = x0; x < x0 + w; x++) {
      const o = (y * a.width + x) * 3;
      if (Math.abs(a.data[o]! - b.data[o]!) + Math.abs(a.data[o + 1]! - b.data[o + 1]!) > 60) changed++;
    }
  }
  return changed;
}

const hasXvfb = (() => {
  try {
    execFileSync('which', ['Xvfb', 'xdotool'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

(hasXvfb ? it : it.skip)('the receiver window shows the live test pattern, and q closes it', async () => {
  await using xvfb = await startXvfb();
  const env = { DISPLAY: xvfb.display };
  await using sender = startApp('sender', ['--source', 'test', '--size', '640x360', '--fps', '15', '--port', '0'], { env });
  const line = await sender.waitForLine(/^LISTENING AT: /, { stream: 'stdout' });
  const port = /:(\d+)$/.exec(line)![1]!;
  let receiver: AppProcess | undefined = startApp('receiver', ['--port', port, '--display', 'on'], { env });
  try {
    await receiver.waitForLine(/connected to/, { stream: 'stderr' });
    await receiver.waitForLine(/, shown [1-9]\d*\.\d fps,/, { stream: 'stdout' });

    const first = await xvfb.screenshot();
    const bars = findColourBars(first, 640);
    expect(bars).not.toBeNull();
    // The lowest row crossing the bars is the pattern's last row.
    const top = bars!.y - 359;
    // The frame number and clock (top left of the pattern) change: the picture is live. Look
    // until they have (each screenshot takes a while by itself).
    const liveRegionChange = (shot: RawImage) => regionDiffers(first, shot, bars!.x + 10, Math.max(0, top + 10), 200, 60);
    const deadline = Date.now() + 10_000;
    let second = await xvfb.screenshot();
    while (liveRegionChange(second) <= 50 && Date.now() < deadline) second = await xvfb.screenshot();
    expect(liveRegionChange(second)).toBeGreaterThan(50);

    await sendKey(xvfb.display, 'camstream', 'q');
    expect(await receiver.waitForExit(15_000)).toEqual({ code: 0, signal: null });
    expect(receiver.stderrLines.join('\n')).toMatch(/window closed/);
    receiver = undefined;
  } finally {
    await receiver?.[Symbol.asyncDispose]();
  }
});
