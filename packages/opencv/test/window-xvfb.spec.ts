import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { RawImage } from '@camstream/media';
import { hasDisplay, probeDisplay } from '../src/display';
import { imageFromMat } from '../src/images';
import { loadOpenCV } from '../src/load-opencv';
import { AdapterChild } from './support/child';
import { BLUE, countColour, distinctiveImage, GREEN, RED } from './support/images';
import { requestWindowClose } from './support/x11-close';
import { isInstalled, startXvfb, type VirtualDisplay } from './support/xvfb';

const run = promisify(execFile);
const tools = ['Xvfb', 'xdotool', 'import'];
const missing = tools.filter((tool) => !isInstalled(tool));
if (missing.length > 0) {
  console.warn(`skipping the window tests under Xvfb: ${missing.join(', ')} not installed (apt-get install xvfb xdotool imagemagick)`);
}
const describeWithXvfb = missing.length === 0 ? describe : describe.skip;

describeWithXvfb('a window on a virtual X display (Xvfb)', () => {
  let xvfb: VirtualDisplay | undefined;
  const children: AdapterChild[] = [];

  beforeAll(async () => {
    xvfb = await startXvfb();
  });

  afterAll(async () => {
    for (const child of children) child.kill();
    await Promise.all(children.map((child) => child.result));
    await xvfb?.stop();
  });

  const env = () => ({ ...process.env, DISPLAY: xvfb!.display });

  async function screenshot(): Promise<RawImage> {
    const { stdout } = await run('import', ['-window', 'root', '-display', xvfb!.display, 'png:-'], { encoding: 'buffer', maxBuffer: 64 << 20 });
    return imageFromMat(loadOpenCV().imdecode(stdout));
  }

  async function windowId(title: string): Promise<number> {
    const { stdout } = await run('xdotool', ['search', '--name', `^${title}$`], { env: env() });
    return Number(stdout.trim().split('\n')[0]);
  }

  function openChildWindow(title: string): AdapterChild {
    const child = new AdapterChild(['window', title], env());
    children.push(child);
    return child;
  }

  it('detects the display', async () => {
    expect(hasDisplay({ DISPLAY: xvfb!.display })).toBe(true);
    await expect(probeDisplay({ DISPLAY: xvfb!.display })).resolves.toEqual({ available: true, display: xvfb!.display });
  });

  it('shows the latest image (checked in a screenshot) and closes when q is pressed', async () => {
    const title = 'camstream window test q';
    const child = openChildWindow(title);
    await expect(child.waitForLine(/^READY/)).resolves.toBe('READY shown=1 dropped=5 settled-before-shown=5');

    // Painting is asynchronous: look until the picture is on the screen.
    const image = distinctiveImage();
    const expected = { red: countColour(image, RED), blue: countColour(image, BLUE), green: countColour(image, GREEN) };
    let seen = { red: 0, blue: 0, green: 0 };
    for (let attempt = 0; attempt < 50; attempt++) {
      const shot = await screenshot();
      seen = { red: countColour(shot, RED), blue: countColour(shot, BLUE), green: countColour(shot, GREEN) };
      if (seen.blue >= expected.blue * 0.98 && seen.red >= expected.red * 0.98 && seen.green >= expected.green * 0.98) break;
      await new Promise((wake) => setTimeout(wake, 100));
    }
    for (const colour of ['red', 'blue', 'green'] as const) {
      expect(seen[colour]).toBeGreaterThanOrEqual(expected[colour] * 0.98);
      expect(seen[colour]).toBeLessThanOrEqual(expected[colour] * 1.02);
    }

    await run('xdotool', ['search', '--name', `^${title}$`, 'key', 'q'], { env: env() });
    await expect(child.waitForLine(/^CLOSED/)).resolves.toBe('CLOSED key');
    await expect(child.result).resolves.toMatchObject({ code: 0 });
  });

  it('closes on Esc too', async () => {
    const title = 'camstream window test esc';
    const child = openChildWindow(title);
    await child.waitForLine(/^READY/);
    await run('xdotool', ['search', '--name', `^${title}$`, 'key', 'Escape'], { env: env() });
    await expect(child.waitForLine(/^CLOSED/)).resolves.toBe('CLOSED key');
  });

  it('closes when the window is closed with its close button (WM_DELETE_WINDOW)', async () => {
    const title = 'camstream window test close';
    const child = openChildWindow(title);
    await child.waitForLine(/^READY/);
    await requestWindowClose(xvfb!.display, await windowId(title));
    await expect(child.waitForLine(/^CLOSED/)).resolves.toBe('CLOSED window');
    await expect(child.result).resolves.toMatchObject({ code: 0 });
  });
});
