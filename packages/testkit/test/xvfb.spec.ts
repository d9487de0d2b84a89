import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { sendKey, startProcess, startXvfb } from '../src';
import { parseXwd } from '../src/xvfb';

function installed(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// CI machines have these (Debian: xvfb, x11-apps, xdotool, x11-utils); elsewhere the tests skip.
const withXvfb = installed('Xvfb') && installed('xwd') ? describe : describe.skip;
const withXev = installed('xdotool') && installed('xev') ? it : it.skip;

withXvfb('startXvfb', () => {
  it('starts a headless display, takes a 1280x800 screenshot and stops', async () => {
    const xvfb = await startXvfb();
    const number = xvfb.display.slice(1);
    expect(existsSync(`/tmp/.X11-unix/X${number}`)).toBe(true);
    const image = await xvfb.screenshot();
    expect(image).toMatchObject({ width: 1280, height: 800, channels: 3 });
    expect(image.data.length).toBe(1280 * 800 * 3);
    await xvfb.close();
    expect(xvfb.process.exitedWith).toBeDefined();
  });

  const withXclock = installed('xclock') ? it : it.skip;

  withXclock('screenshots show what windows draw, as BGR', async () => {
    await using xvfb = await startXvfb({ width: 640, height: 480 });
    await using _clock = startProcess('xclock', ['-geometry', '200x200+100+100', '-bg', 'orange'], { env: { DISPLAY: xvfb.display } });
    const orange = [0, 165, 255];
    const pixelAt = (data: Buffer, x: number, y: number) => [...data.subarray((y * 640 + x) * 3, (y * 640 + x) * 3 + 3)];
    const deadline = Date.now() + 10_000;
    let image = await xvfb.screenshot();
    while (pixelAt(image.data, 110, 110).join() !== orange.join() && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      image = await xvfb.screenshot();
    }
    expect(pixelAt(image.data, 110, 110)).toEqual(orange);
    expect(pixelAt(image.data, 10, 10)).not.toEqual(orange);
  });

  it('two servers at once get different displays', async () => {
    await using first = await startXvfb({ width: 320, height: 240 });
    await using second = await startXvfb({ width: 320, height: 240 });
    expect(first.display).not.toBe(second.display);
    expect((await second.screenshot()).width).toBe(320);
  });

  withXev('sendKey presses a key in a named window', async () => {
    await using xvfb = await startXvfb({ width: 640, height: 480 });
    // xev opens a window called "Event Tester" and prints every event it receives.
    await using xev = startProcess('xev', ['-event', 'keyboard'], { env: { DISPLAY: xvfb.display } });
    await sendKey(xvfb.display, '^Event Tester$', 'q');
    // xev prints "KeyPress event ..." and a line with the keysym, then "KeyRelease event ...".
    await xev.waitForLine(/^KeyRelease event/, { timeoutMs: 10_000 });
    const events = xev.stdoutLines.filter((line) => /^Key(Press|Release) event|keysym/.test(line));
    expect(events.slice(0, 3).map((line) => /^Key\w+|keysym 0x[0-9a-f]+, \w+/.exec(line.trim())![0])).toEqual([
      'KeyPress', 'keysym 0x71, q', 'KeyRelease',
    ]);
  });
});

describe('parseXwd', () => {
  it('reads a 32-bit TrueColor dump into BGR', () => {
    // 2x1 image: pure red, then a blue-green pixel; little-endian pixels as on x86 servers.
    const header = Buffer.alloc(100 + 4);
    const words = [104, 7, 2, 24, 2, 1, 0, 0, 32, 0, 32, 32, 8, 4, 0xff0000, 0x00ff00, 0x0000ff, 8, 256, 0, 2, 1, 0, 0, 0];
    words.forEach((word, index) => header.writeUInt32BE(word, index * 4));
    header.write('xwd\0', 100);
    const pixels = Buffer.alloc(8);
    pixels.writeUInt32LE(0xff0000, 0);
    pixels.writeUInt32LE(0x0080c0, 4);
    const image = parseXwd(Buffer.concat([header, pixels]));
    expect(image).toMatchObject({ width: 2, height: 1, channels: 3 });
    expect([...image.data]).toEqual([0, 0, 255, 0xc0, 0x80, 0]);
  });

  it('rejects formats it does not handle', () => {
    const header = Buffer.alloc(100);
    [100, 7, 1].forEach((word, index) => header.writeUInt32BE(word, index * 4));
    expect(() => parseXwd(header)).toThrow(/unsupported XWD/);
  });
});
