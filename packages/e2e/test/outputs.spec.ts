import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { RawImage } from '@camstream/media';
import { loadOpenCV, OpenCVCodec } from '@camstream/opencv';
import { FakeCamera, readFrameNumber, startApp } from '@camstream/testkit';
import { chromium } from 'playwright-core';
import { pump, startServer, until } from './harness';

// What the receiver produces for people: a recording that OpenCV can play back, and a page in a
// real browser. The sender runs in this process with the testkit's fake camera, whose frames carry
// their number, so the outputs can be checked frame by frame.

const headless = { DISPLAY: undefined, WAYLAND_DISPLAY: undefined };
let workDir: string;
beforeAll(() => {
  workDir = mkdtempSync(path.join(tmpdir(), 'camstream-outputs-'));
});
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

it('--record writes a file that OpenCV opens with the stream size and one frame per shown frame', async () => {
  const frames = 60;
  const camera = new FakeCamera({ width: 320, height: 240, fps: 30, frames });
  const server = await startServer(camera, 'jpeg');
  const file = path.join(workDir, 'recording.avi');
  try {
    await using receiver = startApp('receiver', ['--port', String(server.port), '--record', file, '--no-reconnect', '--display', 'off', '--stats-json', '--quiet'], { env: headless });
    await until(() => server.viewerList.length === 1, 'the receiver to join', 30_000);
    await pump(server, camera);
    await server.close('end of stream');
    expect(await receiver.waitForExit(30_000)).toEqual({ code: 0, signal: null });
    const summary = JSON.parse(receiver.stdoutLines.findLast((l) => l.includes('"summary"'))!) as { frames: number; skipped: number };
    expect(summary.frames).toBe(frames);

    const cv = loadOpenCV();
    const capture = new cv.VideoCapture(file);
    try {
      expect(capture.get(cv.CAP_PROP_FRAME_WIDTH)).toBe(320);
      expect(capture.get(cv.CAP_PROP_FRAME_HEIGHT)).toBe(240);
      const numbers: number[] = [];
      for (let mat = capture.read(); !mat.empty; mat = capture.read()) {
        numbers.push(readFrameNumber({ width: mat.cols, height: mat.rows, channels: 3, data: mat.getData() }) ?? -1);
      }
      // Every frame shown was recorded, in order, except what the receiver reports as skipped by a
      // busy decoder or dropped by a recorder that fell behind.
      const [, written, dropped] = /recorded (\d+) frames to .* \((\d+) dropped/.exec(receiver.stderrLines.join('\n'))!.map(Number);
      expect(numbers.length).toBe(written);
      expect(written! + dropped!).toBe(frames - summary.skipped);
      expect(numbers).not.toContain(-1);
      expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
      expect(numbers.at(-1)).toBe(frames - 1);
    } finally {
      capture.release();
    }
  } finally {
    await server.close('test over');
  }
});

const CHROMIUM = '/usr/bin/chromium';
(existsSync(CHROMIUM) ? it : it.skip)('--http serves the live stream to a real browser, and the frame number advances', async () => {
  const camera = new FakeCamera({ width: 320, height: 240, fps: 20 });
  const server = await startServer(camera, 'jpeg');
  const stop = new AbortController();
  const pumping = pump(server, camera, stop.signal);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    await using receiver = startApp('receiver', ['--port', String(server.port), '--http', '0', '--display', 'off', '--quiet'], { env: headless });
    const line = await receiver.waitForLine(/browser viewer at (http:\/\/\S+)/, { stream: 'stderr', timeoutMs: 30_000 });
    const url = /browser viewer at (http:\/\/\S+)/.exec(line)![1]!;
    const page = await browser.newPage({ viewport: { width: 900, height: 700 } });
    await page.goto(url);
    const codec = new OpenCVCodec();
    const readShownFrame = async (): Promise<number | null> => {
      const box = await page.locator('canvas, img').first().boundingBox();
      if (!box || box.width < 320) return null;
      const png = await page.screenshot({ clip: { x: Math.round(box.x), y: Math.round(box.y), width: 320, height: 240 } });
      const image: RawImage = await codec.decode(png, 'png', { width: 320, height: 240, channels: 3 });
      return readFrameNumber(image);
    };
    /** Reads the shown frame every 200 ms, up to 20 s (a loaded machine), until `wanted` takes it; gives the last one read. */
    const shownFrameWhen = async (wanted: (frame: number) => boolean): Promise<number | null> => {
      let shown: number | null = null;
      for (let i = 0; i < 100; i++) {
        shown = await readShownFrame();
        if (shown !== null && wanted(shown)) break;
        await page.waitForTimeout(200);
      }
      return shown;
    };
    // The page connects and shows a first frame, then a newer one.
    const first = await shownFrameWhen(() => true);
    expect(first).not.toBeNull();
    const second = await shownFrameWhen((frame) => frame > first!);
    expect(second).not.toBeNull();
    expect(second!).toBeGreaterThan(first!);
    const text = await page.locator('body').innerText();
    expect(text).toMatch(/fps/i);
  } finally {
    await browser.close();
    stop.abort();
    await pumping;
    await server.close('test over');
  }
});
