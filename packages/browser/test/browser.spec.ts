import { existsSync } from 'node:fs';
import { OpenCVCodec } from '@camstream/opencv';
import { readFrameNumber } from '@camstream/testkit';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { BrowserServer, type ReceiverFigures } from '../src';
import { waitFor } from '../src/testing/test-tab';
import { startNoWebSocketProxy } from './no-websocket-proxy';
import { StreamFeed } from './stream-feed';

/*
 * The page in a real browser: headless Chromium (Debian's) driven by playwright-core, fed real
 * JPEGs of the testkit's fake camera over the WebSocket. Pictures are checked by reading back the
 * frame number that every fake frame carries, from the canvas's own pixels.
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
  console.warn(`browser page tests SKIPPED: ${CHROMIUM} is not installed (apt-get install chromium)`);
}
const describeWithBrowser = haveChromium ? describe : describe.skip;

jest.setTimeout(30_000);

const STATS: ReceiverFigures = {
  seconds: 1,
  fps: 19.5,
  decodedFps: 19.5,
  shownFps: 19,
  mbps: 1.25,
  latencyMs: { p50: 3.5, p95: 8.5, p99: 12.5 },
  frames: 4321,
  shown: 4300,
  senderDropped: 3,
  skipped: 2,
  gaps: 0,
  corrupt: 1,
};

/** Evaluates a JavaScript expression in the page (whose DOM types are not this project's: it runs on Node's). */
function inPage<T>(page: Page, expression: string): Promise<T> {
  return page.evaluate(expression) as Promise<T>;
}

/** Resolves once the canvas shows a frame newer than `seq`. */
async function waitForNewerFrame(page: Page, seq: number): Promise<void> {
  // A function, not a string: the page's CSP forbids eval, which a string predicate needs.
  await page.waitForFunction((after: number) => {
    const { document } = globalThis as unknown as { document: { getElementById(id: string): { dataset: Record<string, string | undefined> } | null } };
    return Number(document.getElementById('video')?.dataset['seq']) > after;
  }, seq);
}

async function openPage(context: BrowserContext, server: BrowserServer): Promise<Page> {
  const page = await context.newPage();
  await page.goto(server.url);
  return page;
}

/** Waits until the canvas has drawn a frame and no overlay covers it. */
async function waitForLiveVideo(page: Page): Promise<void> {
  // The page sets data-shown on the canvas once it has drawn a frame.
  await page.locator('#video[data-shown]').waitFor({ state: 'attached', timeout: 10_000 });
  await page.waitForSelector('#overlay:not(.shown)', { state: 'attached', timeout: 5000 });
}

/**
 * What the canvas shows: the frame number read from its pixels, and the seq the page says it drew
 * (read in the same task, so both describe the same picture).
 */
async function shownFrame(page: Page, codec: OpenCVCodec): Promise<{ pixels: number | null; seq: number }> {
  const { png, seq } = await inPage<{ png: string; seq: number }>(
    page,
    `(() => { const canvas = document.getElementById('video'); return { png: canvas.toDataURL('image/png').split(',')[1], seq: Number(canvas.dataset.seq) }; })()`,
  );
  const image = await codec.decode(Buffer.from(png, 'base64'), 'png', { width: WIDTH, height: HEIGHT, channels: 3 });
  return { pixels: readFrameNumber(image), seq };
}

/** Polls the text of the element with this id until it satisfies `accept`. */
async function waitForText(page: Page, id: string, accept: (text: string) => boolean, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let text = '';
  while (!accept((text = (await page.locator(`#${id}`).textContent()) ?? ''))) {
    if (Date.now() > deadline) throw new Error(`#${id} still shows ${JSON.stringify(text)} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return text;
}

describeWithBrowser('the page in headless Chromium', () => {
  const codec = new OpenCVCodec();
  let browser: Browser | undefined;
  let server: BrowserServer;
  let feeder: { since: number; stop(): Promise<void> } | undefined;

  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    server = await BrowserServer.listen({ host: '127.0.0.1', port: 0, title: 'fake camera', codec });
    feeder = new StreamFeed(server, new OpenCVCodec(), { width: WIDTH, height: HEIGHT, fps: FPS }).run();
  });

  afterAll(async () => {
    try {
      await feeder?.stop();
      await server?.close();
    } finally {
      await browser?.close();
    }
  });

  /** A fresh context at device scale 1, so the 320x240 canvas lays out as 320x240 pixels. */
  async function withContext(use: (context: BrowserContext) => Promise<void>): Promise<void> {
    const context = await browser!.newContext({ viewport: { width: 1024, height: 768 }, deviceScaleFactor: 1 });
    try {
      await use(context);
    } finally {
      await context.close();
    }
  }

  test('draws the frames it receives over the WebSocket, the right ones, advancing, at natural size, and acknowledges them', async () => {
    await withContext(async (context) => {
      const page = await openPage(context, server);
      expect(await page.title()).toBe('fake camera · camstream');
      await waitForLiveVideo(page);
      const box = await page.locator('#video').boundingBox();
      expect(box).toMatchObject({ width: WIDTH, height: HEIGHT });
      const first = await shownFrame(page, codec);
      expect(first.pixels).toBe(first.seq);
      await waitForNewerFrame(page, first.seq);
      const second = await shownFrame(page, codec);
      expect(second.pixels).toBe(second.seq);
      expect(second.seq).toBeGreaterThan(first.seq);
      await expect(page.locator('#state').textContent()).resolves.toBe('LIVE');

      // It acknowledged what it drew: the server has its acks, and keeps little in flight.
      const clientId = await inPage<string>(page, 'window.camstreamViewer.clientId');
      await waitFor(() => (server.clients.find((c) => c.kind === 'tab' && c.id === clientId)?.tab?.acks ?? 0) >= 3, 'three acks from the page');
      const tab = server.clients.find((c) => c.kind === 'tab' && c.id === clientId)!.tab!;
      expect(tab.capacityBytesPerSecond).toBeGreaterThan(0);
    });
  });

  test("shows this tab's own figures: fps, capture -> display latency, rung, skipped by server", async () => {
    await withContext(async (context) => {
      const page = await openPage(context, server);
      await waitForLiveVideo(page);
      await waitForText(page, 'tab-fps', (text) => Number(text) >= 5, 5000);
      for (const id of ['tab-p50', 'tab-p95', 'tab-p99']) {
        const ms = Number(await waitForText(page, id, (text) => text !== '–', 3000));
        expect(ms).toBeGreaterThanOrEqual(0);
      }
      const p50 = Number(await page.locator('#tab-p50').textContent());
      const p99 = Number(await page.locator('#tab-p99').textContent());
      expect(p99).toBeGreaterThanOrEqual(p50);
      // No frame can be older than the stream (a wrong clock or unit would make it so).
      expect(p99).toBeLessThanOrEqual(Date.now() - feeder!.since);
      expect(await page.locator('#tab-rung').textContent()).toBe('0 (full quality)');
      // Skipped by the server: its own count for this tab's connection, which a busy machine can
      // make more than 0 (the page learns it with the next frame, so wait for that).
      const clientId = await inPage<string>(page, 'window.camstreamViewer.clientId');
      const skippedByServer = () => server.clients.find((c) => c.kind === 'tab' && c.id === clientId)?.dropped;
      await waitForText(page, 'tab-server-skipped', (text) => skippedByServer() !== undefined && text === String(skippedByServer()), 5000);
      expect(await page.locator('#tab-transport').textContent()).toMatch(/^WebSocket, .*\(now JPEG\)$/); // the stream is JPEG, whatever this browser can decode
      // The latencies behind the figures are real measurements of frames drawn.
      const samples = await inPage<number[]>(page, 'window.camstreamViewer.latenciesSince(5000)');
      expect(samples.length).toBeGreaterThan(5);
    });
  });

  test('shows the receiver figures after publishStats', async () => {
    await withContext(async (context) => {
      const page = await openPage(context, server);
      await waitForLiveVideo(page);
      server.publishStats(STATS);
      await waitForText(page, 'stat-fps', (text) => text === '19.5', 3000);
      const text = (id: string) => page.locator(`#${id}`).textContent();
      expect(await text('stat-shown-fps')).toBe('19.0');
      expect(await text('stat-p50')).toBe('3.5');
      expect(await text('stat-p95')).toBe('8.5');
      expect(await text('stat-p99')).toBe('12.5');
      expect(await text('stat-dropped')).toBe('3');
      expect(await text('stat-skipped')).toBe('2');
      expect(await text('stat-gaps')).toBe('0');
      expect(await text('stat-corrupt')).toBe('1');
      expect(await page.locator('#stat-corrupt').getAttribute('class')).toContain('alarm');
      await waitForText(page, 'stat-resolution', (t) => t === `${WIDTH}×${HEIGHT}`, 3000);
      expect(await text('stat-viewers')).toBe('1');
    });
  });

  test('two tabs both advance; closing one frees its connections', async () => {
    await withContext(async (context) => {
      const before = server.clientCount;
      const pages = [await openPage(context, server), await openPage(context, server)];
      await Promise.all(pages.map(waitForLiveVideo));
      // Each page holds two connections: the WebSocket and the event stream. An event stream that
      // failed to open on a loaded machine is retried by the browser after about 3-5 s.
      await waitFor(() => server.clientCount === before + 4, 'four connections', 15_000);
      const firsts = await Promise.all(pages.map((page) => shownFrame(page, codec)));
      await Promise.all(pages.map((page, i) => waitForNewerFrame(page, firsts[i]!.seq)));
      const seconds = await Promise.all(pages.map((page) => shownFrame(page, codec)));
      pages.forEach((_page, i) => {
        expect(firsts[i]!.pixels).toBe(firsts[i]!.seq);
        expect(seconds[i]!.pixels).toBe(seconds[i]!.seq);
        expect(seconds[i]!.seq).toBeGreaterThan(firsts[i]!.seq);
      });
      await pages[0]!.close();
      await waitFor(() => server.clientCount === before + 2, 'the closed tab to free its two connections');
    });
    await waitFor(() => server.clientCount === 0, 'all connections to close');
  });

  test('says so clearly when no frame has arrived yet, and when the stream stalls', async () => {
    const idle = await BrowserServer.listen({ host: '127.0.0.1', port: 0, title: 'idle camera', codec });
    try {
      await withContext(async (context) => {
        const page = await openPage(context, idle);
        await waitForText(page, 'state', (text) => text === 'NOT CONNECTED', 5000);
        expect(await page.locator('#overlay').textContent()).toMatch(/no frame received yet/);

        // Frames arrive: live. Then they stop: stalled after 2 s.
        const idleFeeder = new StreamFeed(idle, new OpenCVCodec(), { width: WIDTH, height: HEIGHT, fps: FPS }).run();
        try {
          await waitForLiveVideo(page);
          expect(await page.locator('#state').textContent()).toBe('LIVE');
        } finally {
          await idleFeeder.stop();
        }
        await waitForText(page, 'state', (text) => text === 'STALLED', 5000);
        expect(await page.locator('#overlay').textContent()).toMatch(/no frame/i);
      });
    } finally {
      await idle.close();
    }
  });

  test('falls back to /stream.mjpg when WebSocket connections keep failing', async () => {
    // Something between the page and the server that passes HTTP but no WebSocket.
    const proxy = await startNoWebSocketProxy({ host: '127.0.0.1', port: server.port });
    try {
      await withContext(async (context) => {
        const page = await context.newPage();
        await page.goto(proxy.url);
        await page.locator('img#video').waitFor({ state: 'attached', timeout: 15_000 });
        expect(await page.locator('#tab-transport').textContent()).toBe('MJPEG (no latency bound)');
        await waitFor(() => server.clients.some((c) => c.kind === 'mjpeg' && c.sent > 0), 'frames on the MJPEG stream');
        await waitForText(page, 'state', (text) => text === 'LIVE', 5000);
      });
    } finally {
      await proxy.close();
    }
  });
});
