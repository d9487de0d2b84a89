import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasDisplay, probeDisplay } from '../src/display';
import { runAdapterChild } from './support/child';
import { xauthorityEntry } from './support/xauthority';

/** A unix-socket "X server" that answers the connection setup with `status` (1 = success). */
async function fakeXServer(path: string, status: 0 | 1, reason = ''): Promise<{ server: Server; received: Buffer[] }> {
  const received: Buffer[] = [];
  const server = createServer((socket) => {
    socket.on('error', () => undefined); // the prober may hang up first
    socket.on('data', (chunk) => {
      received.push(chunk);
      const reply = Buffer.alloc(8 + ((reason.length + 3) & ~3));
      reply[0] = status;
      reply[1] = reason.length;
      reply.writeUInt16LE(11, 2);
      reply.write(reason, 8, 'latin1');
      socket.end(reply);
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return { server, received };
}

describe('display detection', () => {
  let directory: string;
  const servers: Server[] = [];
  beforeAll(() => (directory = mkdtempSync(join(tmpdir(), 'camstream-display-'))));
  afterAll(() => {
    for (const server of servers) server.close();
    rmSync(directory, { recursive: true, force: true });
  });

  it('has no display when DISPLAY is unset or empty', async () => {
    expect(hasDisplay({})).toBe(false);
    expect(hasDisplay({ DISPLAY: '' })).toBe(false);
    await expect(probeDisplay({})).resolves.toEqual({ available: false, reason: 'DISPLAY is not set' });
  });

  it('has no display when DISPLAY names a server that does not exist (":97")', async () => {
    expect(hasDisplay({ DISPLAY: ':97' })).toBe(false);
    const status = await probeDisplay({ DISPLAY: ':97' });
    expect(status.available).toBe(false);
    expect(!status.available && status.reason).toMatch(/^DISPLAY=:97 but no X server answers at \/tmp\/\.X11-unix\/X97/);
  });

  it('tries TCP port 6000+N for host:N', async () => {
    const status = await probeDisplay({ DISPLAY: '127.0.0.1:97' }, 500);
    expect(!status.available && status.reason).toMatch(/no X server answers at 127\.0\.0\.1:6097 \(TCP\)/);
    expect(hasDisplay({ DISPLAY: '127.0.0.1:97' }, 500)).toBe(false);
  });

  it('rejects a DISPLAY it cannot parse', async () => {
    expect(hasDisplay({ DISPLAY: 'nonsense' })).toBe(false);
    const status = await probeDisplay({ DISPLAY: 'nonsense' });
    expect(!status.available && status.reason).toMatch(/not of the form/);
  });

  it('accepts a server that completes the X11 setup, presenting the Xauthority cookie', async () => {
    // A DISPLAY that starts with "/" names the socket itself (launchd style).
    const display = join(directory, 'accepting:0');
    const { server, received } = await fakeXServer(display, 1);
    servers.push(server);
    const xauthority = join(directory, 'Xauthority');
    const cookie = Buffer.from('0123456789abcdef0123456789abcdef', 'hex');
    writeFileSync(xauthority, xauthorityEntry(65535, '', '0', 'MIT-MAGIC-COOKIE-1', cookie));
    const env = { DISPLAY: display, XAUTHORITY: xauthority };
    await expect(probeDisplay(env)).resolves.toEqual({ available: true, display });
    // (hasDisplay cannot be tried against this server: its spawnSync blocks the very event loop
    // that would answer. The Xvfb test checks it against a real server.)
    const setup = received[0]!;
    expect(setup[0]).toBe(0x6c);
    expect(setup.subarray(12, 30).toString('latin1')).toBe('MIT-MAGIC-COOKIE-1');
    expect(setup.includes(cookie)).toBe(true);
  });

  it('has no display when the server refuses the connection (what would make Qt abort)', async () => {
    const display = join(directory, 'refusing:0');
    const { server } = await fakeXServer(display, 0, 'Authorization required, but no authorization protocol specified');
    servers.push(server);
    const env = { DISPLAY: display, XAUTHORITY: join(directory, 'none') };
    const status = await probeDisplay(env);
    expect(!status.available && status.reason).toBe(`the X server at ${display} refused the connection: Authorization required, but no authorization protocol specified`);
  });
});

describe('openWindow without a display', () => {
  it('throws NoDisplayError without loading OpenCV, and the process survives', async () => {
    const env = { ...process.env };
    delete env['DISPLAY'];
    const result = await runAdapterChild(['no-display'], env);
    expect(result.stderr).toBe('');
    const lines = result.stdout.trim().split('\n');
    expect(JSON.parse(lines[0]!)).toEqual({
      name: 'NoDisplayError',
      code: 'ERR_NO_DISPLAY',
      message: 'no display available (DISPLAY is not set): cannot open the window "camstream no display"',
    });
    expect(JSON.parse(lines[1]!)).toMatchObject({ name: 'NoDisplayError', code: 'ERR_NO_DISPLAY' });
    expect(JSON.parse(lines[1]!).message).toMatch(/^no display available \(DISPLAY=:97 but no X server answers/);
    expect(lines[2]).toBe('survived opencv-loaded=false');
    expect(result.code).toBe(0);
  });
});

describe('loading OpenCV', () => {
  it('waits for first use (a test pattern\'s first frame), prints nothing, skips @u4/opencv-build (250 ms, Info lines)', async () => {
    const result = await runAdapterChild(['load'], process.env);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(
      'loaded-on-import=false\nloaded-by-test-pattern=false (1280x720)\nloaded-by-first-frame=true\n' +
        'version=4.6\nmemoized=true\nopencv-build-loaded=false\n',
    );
    expect(result.code).toBe(0);
  });
});
