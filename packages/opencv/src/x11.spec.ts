import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { xauthorityEntry } from '../test/support/xauthority';
import { connectionSetup, findCookie, parseDisplay } from './x11';

describe('parseDisplay', () => {
  it('maps :N and unix:N to the local socket (and, on Linux, its abstract twin)', () => {
    for (const display of [':0', ':0.0', 'unix:0', 'unix/:0']) {
      const address = parseDisplay(display)!;
      expect(address.displayNumber).toBe(0);
      expect(address.local).toBe(true);
      expect(address.targets[0]).toEqual({ path: '/tmp/.X11-unix/X0' });
      if (process.platform === 'linux') expect(address.targets[1]).toEqual({ path: '\0/tmp/.X11-unix/X0' });
    }
  });

  it('maps host:N to TCP port 6000+N (SSH forwarding uses localhost:10)', () => {
    expect(parseDisplay('localhost:10.0')).toMatchObject({ targets: [{ host: 'localhost', port: 6010 }], local: false, tcpHost: 'localhost' });
    expect(parseDisplay('tcp/example.org:2')).toMatchObject({ targets: [{ host: 'example.org', port: 6002 }] });
    expect(parseDisplay('[::1]:1')).toMatchObject({ targets: [{ host: '::1', port: 6001 }] });
  });

  it('takes a path before :N as the socket itself (macOS launchd)', () => {
    expect(parseDisplay('/private/tmp/com.apple.launchd.x/org.xquartz:0')).toMatchObject({
      targets: [{ path: '/private/tmp/com.apple.launchd.x/org.xquartz:0' }],
      local: true,
    });
  });

  it('refuses what is not a display', () => {
    for (const display of ['', 'nonsense', ':', ':x', 'host:']) expect(parseDisplay(display)).toBeUndefined();
  });
});

describe('findCookie', () => {
  let directory: string;
  beforeAll(() => (directory = mkdtempSync(join(tmpdir(), 'camstream-xauth-'))));
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  const cookie = (byte: number) => Buffer.alloc(16, byte);
  const write = (...entries: Buffer[]) => {
    const file = join(directory, `auth-${Math.random()}`);
    writeFileSync(file, Buffer.concat(entries));
    return file;
  };

  it('picks this host\'s local entry for the right display number', () => {
    const file = write(
      xauthorityEntry(256, hostname(), '1', 'MIT-MAGIC-COOKIE-1', cookie(1)),
      xauthorityEntry(256, 'elsewhere', '0', 'MIT-MAGIC-COOKIE-1', cookie(2)),
      xauthorityEntry(256, hostname(), '0', 'MIT-MAGIC-COOKIE-1', cookie(3)),
    );
    expect(findCookie(parseDisplay(':0')!, { XAUTHORITY: file })?.data).toEqual(cookie(3));
    expect(findCookie(parseDisplay(':1')!, { XAUTHORITY: file })?.data).toEqual(cookie(1));
    expect(findCookie(parseDisplay(':5')!, { XAUTHORITY: file })).toBeUndefined();
  });

  it('uses local entries for loopback TCP displays (SSH forwarding) and Internet entries for others', () => {
    const file = write(
      xauthorityEntry(256, hostname(), '10', 'MIT-MAGIC-COOKIE-1', cookie(4)),
      xauthorityEntry(0, '\x0a\x00\x00\x05', '0', 'MIT-MAGIC-COOKIE-1', cookie(5)),
    );
    expect(findCookie(parseDisplay('localhost:10')!, { XAUTHORITY: file })?.data).toEqual(cookie(4));
    expect(findCookie(parseDisplay('10.0.0.5:0')!, { XAUTHORITY: file })?.data).toEqual(cookie(5));
  });

  it('finds nothing when there is no file, and stops at a truncated record', () => {
    expect(findCookie(parseDisplay(':0')!, { XAUTHORITY: join(directory, 'missing') })).toBeUndefined();
    const whole = xauthorityEntry(65535, '', '0', 'MIT-MAGIC-COOKIE-1', cookie(6));
    expect(findCookie(parseDisplay(':0')!, { XAUTHORITY: write(whole.subarray(0, whole.length - 3)) })).toBeUndefined();
  });
});

describe('connectionSetup', () => {
  it('is the 12-byte little-endian request for X11.0 without a cookie', () => {
    expect(connectionSetup(undefined)).toEqual(Buffer.from([0x6c, 0, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
  });

  it('carries the cookie name and data, each padded to 4 bytes', () => {
    const setup = connectionSetup({ name: 'MIT-MAGIC-COOKIE-1', data: Buffer.alloc(16, 7) });
    expect(setup.length).toBe(12 + 20 + 16);
    expect(setup.readUInt16LE(6)).toBe(18);
    expect(setup.readUInt16LE(8)).toBe(16);
    expect(setup.subarray(12, 30).toString('latin1')).toBe('MIT-MAGIC-COOKIE-1');
    expect(setup.subarray(32)).toEqual(Buffer.alloc(16, 7));
  });
});
