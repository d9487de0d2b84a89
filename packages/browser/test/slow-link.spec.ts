import { existsSync } from 'node:fs';
import { OpenCVCodec } from '@camstream/opencv';
import { ChaosProxy, readFrameNumber } from '@camstream/testkit';
import { chromium, type Browser, type Page } from 'playwright-core';
import { BrowserServer } from '../src';
import { StreamFeed } from './stream-feed';

/*
 * The page in headless Chromium behind a link slower than the stream (the testkit's chaos proxy
 * with a rate limit): what it shows must change the way the flow control says. No timing is
 * asserted: how fast things settle is the benchmark's business (bench/slow-link.ts).
 */

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const WIDTH = 640;
const HEIGHT = 480;
const FPS = 30;

const describeWithBrowser = existsSync(CHROMIUM) ? describe : describe.skip;
jest.setTimeout(60_000);

async function textOf(page: Page, id: string): Promise<string> {
  return (await page.locator(`#${id}`).textContent()) ?? '';
}

/** Polls until `accept` holds for the text of #id. */
async function waitForText(page: Page, id: string, accept: (text: string) => boolean, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let text = '';
  while (!accept((text = await textOf(page, id)))) {
    if (Date.now() > deadline) throw new Error(`#${id} still shows ${JSON.stringify(text)} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return text;
}

/** The frame number in the canvas's pixels and the seq the page says it drew there. */
async function shownFrame(page: Page, codec: OpenCVCodec): Promise<{ pixels: number | null; seq: number }> {
  const { png, seq } = (await page.evaluate(
    `(() => { const canvas = document.getElementById('video'); return { png: canvas.toDataURL('image/png').split(',')[1], seq: Number(canvas.dataset.seq) }; })()`,
  )) as { png: string; seq: number };
  const image = await codec.decode(Buffer.from(png, 'base64'), 'png', { width: WIDTH, height: HEIGHT, channels: 3 });
  return { pixels: readFrameNumber(image), seq };
}

describeWithBrowser('the page behind a slow link', () => {
  const codec = new OpenCVCodec();
  let browser: Browser;
  let server: BrowserServer | undefined;
  let proxy: ChaosProxy | undefined;
  let feeder: { stop(): Promise<void> } | undefined;

  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });
  afterAll(async () => {
    await browser?.close();
  });
  afterEach(async () => {
    await feeder?.stop();
    await proxy?.close();
    await server?.close();
  });

  /** A stream of fake-camera JPEGs at 30 fps, served through a link carrying `fraction` of it. */
  async function start(fraction: number, adapt: boolean): Promise<Page> {
    server = await BrowserServer.listen({ host: '127.0.0.1', port: 0, title: 'slow link', codec, adapt });
    const feed = new StreamFeed(server, new OpenCVCodec(), { width: WIDTH, height: HEIGHT, fps: FPS });
    const first = (await feed.prepare())!;
    await feed.publish(first);
    const streamBytesPerSecond = first.jpeg!.length * FPS;
    proxy = await ChaosProxy.start({
      target: { host: '127.0.0.1', port: server.port },
      link: { downstream: { bytesPerSecond: fraction * streamBytesPerSecond, oneWayDelayMs: 10, burstBytes: 4096 }, upstream: { oneWayDelayMs: 10 } },
    });
    feeder = feed.run();
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 }, deviceScaleFactor: 1 });
    await page.goto(`http://${proxy.host}:${proxy.port}/`);
    return page;
  }

  test('without adaptation the server skips frames for the tab, and the page says how many', async () => {
    const page = await start(0.4, false);
    await waitForText(page, 'tab-server-skipped', (text) => Number(text) > 10, 20_000);
    expect(await textOf(page, 'tab-rung')).toBe('0 (full quality)');
    // What it shows is still the frame it says it shows.
    const shown = await shownFrame(page, codec);
    expect(shown.pixels).toBe(shown.seq);
    // Every frame skipped for this tab is one the page never got: its seqs jump by at least that much.
    const { skipped, seqs } = (await page.evaluate(
      `(() => { const v = window.camstreamViewer; return { skipped: v.tab.serverSkipped, seqs: v.tab.latencies.map((l) => l.seq) }; })()`,
    )) as { skipped: number; seqs: number[] };
    expect(seqs.length).toBeGreaterThan(2);
    expect(seqs.at(-1)! - seqs[0]! + 1).toBeGreaterThan(seqs.length);
    expect(skipped).toBeGreaterThan(10);
  });

  test('with adaptation the tab moves to a lower rung, drawn at the stream size, showing the right frames', async () => {
    const page = await start(0.3, true);
    const rung = await waitForText(page, 'tab-rung', (text) => /^[1-9]\d*$/.test(text), 30_000);
    expect(Number(rung)).toBeGreaterThan(0);
    const box = await page.locator('#video').boundingBox();
    expect(box).toMatchObject({ width: WIDTH, height: HEIGHT });
    const shown = await shownFrame(page, codec);
    expect(shown.pixels).toBe(shown.seq);
  });
});
