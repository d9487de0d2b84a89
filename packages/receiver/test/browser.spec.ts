import { existsSync } from 'node:fs';
import { OpenCVCodec } from '@camstream/opencv';
import { FakeCamera, readFrameNumber } from '@camstream/testkit';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { HttpViewer } from '../src/http-viewer';
import type { StatsSnapshot } from '../src/stats';

/*
 * The browser viewer in a real browser: headless Chromium (Debian's) driven by playwright-core,
 * fed real JPEGs of the testkit's fake camera. Pictures are checked by reading the frame number
 * that every fake frame carries back out of screenshots of the page.
 */

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const WIDTH = 320;
const HEIGHT = 240;
const FPS = 20;

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  console.warn(`browser viewer tests SKIPPED: ${CHROMIUM} is not installed (apt-get install chromium)`);
}
const describeWithBrowser = haveChromium ? describe : describe.skip;

jest.setTimeout(20_000);

const STATS: StatsSnapshot = {
  seconds: 1,
  fps: 19.5,
  decodedFps: 19.5,
  shownFps: 19.5,
  mbps: 1.25,
  latencyMs: { p50: 3.5, p95: 8.5, p99: 12.5 },
  frames: 4321,
  shown: 4318,
  senderDropped: 3,
  skipped: 2,
  gaps: 0,
  corrupt: 1,
  rung: null,
  lowerRungFrames: 0,
};

interface Feeder {
  /** Wall clock (ms since the epoch) before the first frame was captured. */
  since: number;
  stop(): Promise<void>;
}

/** Publishes fake camera frames as real JPEGs at FPS until stopped. */
function startFeeding(viewer: HttpViewer, codec: OpenCVCodec): Feeder {
  const since = Date.now();
  const camera = new FakeCamera({ width: WIDTH, height: HEIGHT, fps: FPS });
  const done = (async () => {
    for (;;) {
      const frameNumber = camera.nextFrameNumber;
      const frame = await camera.read();
      if (!frame) return;
      const jpeg = await codec.encode(frame.image, 'jpeg', { quality: 80 });
      viewer.publishJpeg(jpeg, { seq: frameNumber, captureTime: frame.captureTimeMs, width: WIDTH, height: HEIGHT });
    }
  })();
  return {
    since,
    async stop() {
      await camera.close();
      await done;
    },
  };
}

async function openViewerPage(context: BrowserContext, viewer: HttpViewer): Promise<Page> {
  const page = await context.newPage();
  await page.goto(viewer.url);
  return page;
}

/** Waits until the canvas has drawn a frame and no overlay covers it. */
async function waitForLiveVideo(page: Page): Promise<void> {
  // The page sets data-shown on the canvas once it has drawn a frame.
  await page.locator('#video[data-shown]').waitFor({ state: 'attached', timeout: 5000 });
  await page.waitForSelector('#overlay:not(.shown)', { state: 'attached', timeout: 5000 });
}

/** The frame number shown in the page's video element, read from an element screenshot. */
async function shownFrameNumber(page: Page, codec: OpenCVCodec): Promise<number | null> {
  // An element screenshot clipped to whole pixels: the canvas may sit at a fractional y (text
  // above it), which would make a plain element screenshot 241 rows high.
  const box = await page.locator('#video').boundingBox();
  if (!box) throw new Error('the video element is not visible');
  const png = await page.screenshot({ type: 'png', clip: { x: Math.round(box.x), y: Math.round(box.y), width: WIDTH, height: HEIGHT } });
  const image = await codec.decode(png, 'png', { width: WIDTH, height: HEIGHT, channels: 3 });
  return readFrameNumber(image);
}

/** Looks at the page until it shows a frame numbered above `after`; returns that number. */
async function waitForFrameAfter(page: Page, codec: OpenCVCodec, after: number, timeoutMs = 5000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let shown = await shownFrameNumber(page, codec);
  while (shown === null || shown <= after) {
    if (Date.now() > deadline) throw new Error(`the page still shows frame ${shown} after ${timeoutMs} ms, not one after ${after}`);
    shown = await shownFrameNumber(page, codec);
  }
  return shown;
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Polls the text of the element with this id until it satisfies `accept`. */
async function waitForText(page: Page, id: string, accept: (text: string) => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let text = '';
  while (!accept((text = (await page.locator(`#${id}`).textContent()) ?? ''))) {
    if (Date.now() > deadline) throw new Error(`#${id} still shows ${JSON.stringify(text)} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describeWithBrowser('the browser viewer in headless Chromium', () => {
  const codec = new OpenCVCodec();
  let browser: Browser | undefined;
  let viewer: HttpViewer;
  let feeder: Feeder | undefined;

  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    viewer = await HttpViewer.listen({
      host: '127.0.0.1',
      port: 0,
      title: 'fake camera',
      encodeJpeg: (image) => codec.encode(image, 'jpeg', { quality: 80 }),
    });
    feeder = startFeeding(viewer, codec);
  });

  afterAll(async () => {
    try {
      await feeder?.stop();
      await viewer?.close();
    } finally {
      await browser?.close();
    }
  });

  /** A fresh context at device scale 1, so the 320x240 canvas screenshots as 320x240 pixels. */
  async function withContext(use: (context: BrowserContext) => Promise<void>): Promise<void> {
    const context = await browser!.newContext({ viewport: { width: 1024, height: 768 }, deviceScaleFactor: 1 });
    try {
      await use(context);
    } finally {
      await context.close();
    }
  }

  test('shows live frames that advance, at natural size', async () => {
    await withContext(async (context) => {
      const page = await openViewerPage(context, viewer);
      expect(await page.title()).toBe('fake camera · camstream');
      await waitForLiveVideo(page);
      const box = await page.locator('#video').boundingBox();
      expect(box).toMatchObject({ width: WIDTH, height: HEIGHT });
      const first = await shownFrameNumber(page, codec);
      expect(first).not.toBeNull();
      expect(await waitForFrameAfter(page, codec, first!)).toBeGreaterThan(first!);
      await expect(page.locator('#state').textContent()).resolves.toBe('LIVE');
      // This tab's own figures: frames shown per second and capture -> display latency, which
      // no frame can exceed the age of the stream by (a wrong clock or unit would).
      await waitForText(page, 'tab-fps', (text) => Number(text) >= 5, 3000);
      const latency = Number(await page.locator('#tab-p50').textContent());
      expect(latency).toBeGreaterThanOrEqual(0);
      expect(latency).toBeLessThanOrEqual(Date.now() - feeder!.since);
    });
  });

  test('shows the receiver stats after publishStats', async () => {
    await withContext(async (context) => {
      const page = await openViewerPage(context, viewer);
      await waitForLiveVideo(page);
      viewer.publishStats(STATS);
      await waitForText(page, 'stat-fps', (text) => text === '19.5', 3000);
      const text = (id: string) => page.locator(`#${id}`).textContent();
      expect(await text('stat-p50')).toBe('3.5');
      expect(await text('stat-p95')).toBe('8.5');
      expect(await text('stat-p99')).toBe('12.5');
      expect(await text('stat-dropped')).toBe('3');
      expect(await text('stat-skipped')).toBe('2');
      expect(await text('stat-gaps')).toBe('0');
      expect(await text('stat-corrupt')).toBe('1');
      expect(await page.locator('#stat-corrupt').getAttribute('class')).toContain('alarm');
      expect(await text('stat-resolution')).toBe(`${WIDTH}×${HEIGHT}`);
      expect(await text('stat-viewers')).toBe('1');
    });
  });

  test('two tabs both advance; closing one frees its connections', async () => {
    await withContext(async (context) => {
      const before = viewer.clientCount;
      const pages = [await openViewerPage(context, viewer), await openViewerPage(context, viewer)];
      await Promise.all(pages.map(waitForLiveVideo));
      // Each page holds two connections: the MJPEG stream and the event stream.
      await waitFor(() => viewer.clientCount === before + 4, 'four connections');
      const firsts = await Promise.all(pages.map((page) => shownFrameNumber(page, codec)));
      for (const first of firsts) expect(first).not.toBeNull();
      const seconds = await Promise.all(pages.map((page, i) => waitForFrameAfter(page, codec, firsts[i]!)));
      pages.forEach((_page, i) => expect(seconds[i]!).toBeGreaterThan(firsts[i]!));
      await pages[0]!.close();
      await waitFor(() => viewer.clientCount === before + 2, 'the closed tab to free its two connections');
      const stillLive = await shownFrameNumber(pages[1]!, codec);
      expect(stillLive!).toBeGreaterThanOrEqual(seconds[1]!);
    });
    await waitFor(() => viewer.clientCount === 0, 'all connections to close');
  });

  test('says so clearly when no frame has arrived yet, and when the stream stalls', async () => {
    const idle = await HttpViewer.listen({
      host: '127.0.0.1',
      port: 0,
      title: 'idle camera',
      encodeJpeg: (image) => codec.encode(image, 'jpeg', { quality: 80 }),
    });
    try {
      await withContext(async (context) => {
        const page = await openViewerPage(context, idle);
        await waitForText(page, 'state', (text) => text === 'NOT CONNECTED', 3000);
        expect(await page.locator('#overlay').textContent()).toMatch(/no frame received yet/);

        // Frames arrive: live. Then they stop: stalled after 2 s.
        const idleFeeder = startFeeding(idle, codec);
        try {
          await waitForLiveVideo(page);
          expect(await page.locator('#state').textContent()).toBe('LIVE');
        } finally {
          await idleFeeder.stop();
        }
        await waitForText(page, 'state', (text) => text === 'STALLED', 4000);
        expect(await page.locator('#overlay').textContent()).toMatch(/no frame/i);
      });
    } finally {
      await idle.close();
    }
  });
});
