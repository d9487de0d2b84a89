import { existsSync } from 'node:fs';
import { OpenCVCodec } from '@camstream/opencv';
import { readFrameNumber, renderFakeFrame } from '@camstream/testkit';
import { chromium, type Browser, type Page } from 'playwright-core';
import { BrowserHub, type ReceiverFigures } from '../src';
import { waitFor } from '../src/testing/test-tab';

/*
 * Several cameras on one BrowserHub, in headless Chromium: the grid page has a tile per camera,
 * each fed over its own WebSocket, each showing its own camera's frame (read back from the
 * canvas's pixels: the testkit's fake frames carry their number), and a camera marked stopped is
 * shown STOPPED. The hub's HTTP routes name cameras with ?camera=NAME.
 */

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const WIDTH = 160;
const HEIGHT = 120;
/** Each camera's frames: its own range of numbers, so a tile showing another camera's picture is caught. */
const CAMERAS = [
  { name: 'porch', first: 1000 },
  { name: 'garage', first: 2000 },
  { name: 'yard', first: 3000 },
];
const FRAMES = 5;

const haveChromium = existsSync(CHROMIUM);
const describeWithBrowser = haveChromium ? describe : describe.skip;
if (!haveChromium) console.warn(`grid page tests SKIPPED: ${CHROMIUM} is not installed (apt-get install chromium)`);

jest.setTimeout(30_000);

function figures(state: 'live' | 'stopped', frames: number): ReceiverFigures {
  return { seconds: 1, fps: 5, decodedFps: 5, mbps: 0.1, latencyMs: null, frames, senderDropped: 0, skipped: 0, gaps: 0, corrupt: 0, lostInTransport: 0, refused: 0, state };
}

describeWithBrowser('the grid page of a BrowserHub in headless Chromium', () => {
  const codec = new OpenCVCodec();
  let browser: Browser;
  let hub: BrowserHub;

  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    hub = await BrowserHub.listen({ host: '127.0.0.1', port: 0, title: 'three cameras', codec, grid: true, metrics: () => 'camstream_test_up 1\n' });
    // Each camera sends its frames, as the receiver hands them over (received, then decoded), and stops.
    for (const camera of CAMERAS) {
      const server = hub.camera(camera.name);
      for (let seq = camera.first; seq < camera.first + FRAMES; seq++) {
        const image = renderFakeFrame(seq, WIDTH, HEIGHT);
        const jpeg = await codec.encode(image, 'jpeg', { quality: 85 });
        const captureTime = Date.now();
        server.received({ seq, captureTime, width: WIDTH, height: HEIGHT, encoding: 'jpeg' }, jpeg);
        await server.write(image, { seq, captureTime });
      }
      server.publishStats(figures(camera.name === 'garage' ? 'stopped' : 'live', FRAMES));
    }
  });

  afterAll(async () => {
    await hub?.close();
    await browser?.close();
  });

  /** The frame number read from a tile's canvas pixels, and the seq the page says it drew. */
  async function tileFrame(page: Page, camera: string): Promise<{ pixels: number | null; seq: number }> {
    const { png, seq, width, height } = (await page.evaluate(
      `(() => { const canvas = document.querySelector('figure.tile[data-camera="${camera}"] canvas'); return { png: canvas.toDataURL('image/png').split(',')[1], seq: Number(canvas.dataset.seq), width: canvas.width, height: canvas.height }; })()`,
    )) as { png: string; seq: number; width: number; height: number };
    const image = await codec.decode(Buffer.from(png, 'base64'), 'png', { width, height, channels: 3 });
    return { pixels: readFrameNumber(image), seq };
  }

  test('shows a tile per camera, each drawing its own camera\'s frame over its own WebSocket, and STOPPED on a stopped one', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
    try {
      const page = await context.newPage();
      await page.goto(hub.url);
      expect(await page.title()).toBe('three cameras · camstream');
      for (const camera of CAMERAS) {
        const last = camera.first + FRAMES - 1;
        await page.locator(`figure.tile[data-camera="${camera.name}"] canvas[data-seq="${last}"]`).waitFor({ state: 'attached', timeout: 10_000 });
        expect(await tileFrame(page, camera.name)).toEqual({ pixels: last, seq: last });
      }
      // One tab WebSocket per camera, each on its camera's server, with its own acknowledgements.
      for (const camera of CAMERAS) {
        await waitFor(() => hub.camera(camera.name).clients.some((client) => client.kind === 'tab' && (client.tab?.acks ?? 0) >= 1), `an acknowledged tab of ${camera.name}`);
      }
      await page.locator('figure.tile[data-camera="garage"][data-state="stopped"]').waitFor({ state: 'attached', timeout: 5000 });
      expect(await page.locator('figure.tile[data-camera="garage"] .overlay').textContent()).toBe('STOPPED');
      expect(await page.locator('figure.tile[data-camera="porch"]').getAttribute('data-state')).toBe('live');
      expect(await page.locator('#summary').textContent()).toBe('3 cameras, 1 stopped');
    } finally {
      await context.close();
    }
  });

  test('names each camera\'s URLs with ?camera=NAME, and says which cameras there are', async () => {
    const snapshot = await fetch(`${hub.url}snapshot.jpg?camera=garage`);
    expect(snapshot.status).toBe(200);
    expect(snapshot.headers.get('x-frame-seq')).toBe(String(2000 + FRAMES - 1));
    const jpeg = Buffer.from(await snapshot.arrayBuffer());
    expect(readFrameNumber(await codec.decode(jpeg, 'jpeg', { width: WIDTH, height: HEIGHT, channels: 3 }))).toBe(2000 + FRAMES - 1);

    const stats = (await (await fetch(`${hub.url}stats.json`)).json()) as { cameras: Array<{ camera: string; stats: ReceiverFigures; server: { frame: { seq: number } } }> };
    expect(stats.cameras.map((entry) => [entry.camera, entry.stats.state, entry.server.frame.seq])).toEqual([
      ['porch', 'live', 1004],
      ['garage', 'stopped', 2004],
      ['yard', 'live', 3004],
    ]);
    const one = (await (await fetch(`${hub.url}stats.json?camera=yard`)).json()) as { server: { frame: { seq: number } } };
    expect(one.server.frame.seq).toBe(3004);

    const unnamed = await fetch(`${hub.url}stream.mjpg`);
    expect(unnamed.status).toBe(400);
    expect(await unnamed.text()).toBe('several cameras: name one with ?camera=NAME (cameras: porch, garage, yard)\n');
    const unknown = await fetch(`${hub.url}snapshot.jpg?camera=attic`);
    expect(unknown.status).toBe(404);
    expect(await unknown.text()).toBe('no camera "attic" (cameras: porch, garage, yard)\n');

    const metrics = await fetch(`${hub.url}metrics`);
    expect(metrics.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(await metrics.text()).toBe('camstream_test_up 1\n');
  });
});

describe('a BrowserHub of one camera', () => {
  it('serves that camera exactly as a BrowserServer would, plus /metrics', async () => {
    const codec = new OpenCVCodec();
    const hub = await BrowserHub.listen({ host: '127.0.0.1', port: 0, title: 'one camera', codec, grid: false, metrics: () => 'camstream_test_up 1\n' });
    try {
      const server = hub.camera('porch');
      expect(() => hub.camera('garage')).toThrow('a browser hub without a grid serves one camera; garage would be the second');
      const image = renderFakeFrame(42, WIDTH, HEIGHT);
      server.received({ seq: 42, captureTime: Date.now(), width: WIDTH, height: HEIGHT, encoding: 'jpeg' }, await codec.encode(image, 'jpeg', { quality: 85 }));
      const page = await (await fetch(hub.url)).text();
      expect(page).toContain('<script type="module" src="viewer.js"></script>');
      expect(page).toContain('<title>one camera · camstream</title>');
      const snapshot = await fetch(`${hub.url}snapshot.jpg`);
      expect(snapshot.headers.get('x-frame-seq')).toBe('42');
      expect(await (await fetch(`${hub.url}metrics`)).text()).toBe('camstream_test_up 1\n');
    } finally {
      await hub.close();
    }
  });
});
