import * as net from 'node:net';
import * as path from 'node:path';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { listenOnFreePort, startProcess, workspaceRoot } from '../src';
import { parseChaosProxyArgs, parseRate, parseSchedule } from '../src/chaos-proxy-cli';

const BIN = path.join(workspaceRoot, 'packages', 'testkit', 'bin', 'chaos-proxy');
const startCli = (args: string[]) => startProcess(process.execPath, [BIN, ...args], { name: 'chaos-proxy' });

describe('chaos-proxy command line', () => {
  it.each<[string, number]>([
    ['5.8mbit', 725_000],
    ['500kbit', 62_500],
    ['1Gbit/s', 125_000_000],
    ['2MB', 2_000_000],
    ['725kB/s', 725_000],
    ['64KiB', 65_536],
    ['unlimited', Infinity],
  ])('reads the rate %s as %d bytes per second', (text, bytesPerSecond) => {
    expect(parseRate(text)).toBeCloseTo(bytesPerSecond, 6);
  });

  it.each<[string, RegExp]>([
    ['5.8', /has no unit: write e.g. 5.8mbit \(bits per second\) or 5.8kB \(bytes per second\)/],
    ['5mb', /is ambiguous: write 5mbit for bits or 5MB for bytes per second/],
    ['5 furlongs', /unknown unit "furlongs"/],
    ['-1mbit', /is not a rate/],
    ['fast', /is not a rate/],
  ])('rejects the rate %s, saying why', (text, message) => {
    expect(() => parseRate(text)).toThrow(message);
  });

  it('reads a schedule of timed phases in full, percent, unlimited or absolute rates', () => {
    expect(parseSchedule('2s:full,5s:30%,500ms:unlimited,1.5m:1mbit,full')).toEqual([
      { forMs: 2000, fraction: 1 },
      { forMs: 5000, fraction: 0.3 },
      { forMs: 500, bytesPerSecond: Infinity },
      { forMs: 90_000, bytesPerSecond: 125_000 },
      { fraction: 1 },
    ]);
  });

  it.each<[string, RegExp]>([
    ['full,2s:30%', /phase 1 \("full"\) has no duration: only the last phase may last until the end/],
    ['2:full', /phase 1 \("2:full"\): "2" is not a duration: expected e.g. 500ms, 2s or 1.5m/],
    ['0s:full', /phase 1 \("0s:full"\): a phase must last longer than 0/],
    ['2s:lots', /phase 1 \("2s:lots"\): "lots" is not a rate/],
  ])('rejects the schedule %s, naming the phase', (text, message) => {
    expect(() => parseSchedule(text)).toThrow(message);
  });

  it('turns the documented command line into proxy options', () => {
    const parsed = parseChaosProxyArgs(['--listen', '0', '--target', '127.0.0.1:9999', '--rate', '5.8mbit', '--delay', '10', '--schedule', '2s:full,5s:30%,full']);
    const link = { bytesPerSecond: 725_000, oneWayDelayMs: 10, schedule: [{ forMs: 2000, fraction: 1 }, { forMs: 5000, fraction: 0.3 }, { fraction: 1 }] };
    expect(parsed).toEqual({
      proxy: {
        target: { host: '127.0.0.1', port: 9999 },
        listenHost: '127.0.0.1',
        listenPort: 0,
        link: { upstream: link, downstream: link },
        scheduleStart: 'start',
      },
      statsJson: false,
    });
  });

  it('takes per-direction rates, buffer and burst sizes and the chaos options', () => {
    const parsed = parseChaosProxyArgs([
      '--target', '[::1]:80', '--listen', '0.0.0.0:8080', '--down-rate', '1MB', '--up-rate', '100kbit', '--buffer', '16KiB',
      '--burst', '4096', '--schedule-from', 'first-connection', '--max-chunk-bytes', '7', '--chunk-delay', '2', '--cut-down', '1000', '--seed', '42', '--stats-json',
    ]);
    expect(parsed).toEqual({
      proxy: {
        target: { host: '::1', port: 80 },
        listenHost: '0.0.0.0',
        listenPort: 8080,
        link: {
          upstream: { bytesPerSecond: 12_500, oneWayDelayMs: 0, bufferBytes: 16_384, burstBytes: 4096 },
          downstream: { bytesPerSecond: 1_000_000, oneWayDelayMs: 0, bufferBytes: 16_384, burstBytes: 4096 },
        },
        scheduleStart: 'first-connection',
        maxChunkBytes: 7,
        delayMs: 2,
        cutAfterBytes: { upstream: undefined, downstream: 1000 },
        seed: 42,
      },
      statsJson: true,
    });
  });

  it.each<[string[], RegExp]>([
    [[], /--target HOST:PORT is required/],
    [['--target', 'localhost'], /--target "localhost": expected HOST:PORT/],
    [['--target', 'a:1', '--listen', 'a:70000'], /--listen "a:70000": expected \[HOST:\]PORT with a port 0\.\.65535/],
    [['--target', 'a:1', '--delay', 'soon'], /--delay "soon": "soon" is not a duration/],
    [['--target', 'a:1', '--buffer', '0'], /--buffer "0": "0" is not a size/],
    [['--target', 'a:1', '--down-rate', '3mb'], /--down-rate "3mb": .*ambiguous/],
    [['--target', 'a:1', '--schedule-from', 'noon'], /--schedule-from "noon": expected start or first-connection/],
    [['--target', 'a:1', '--speed', '1'], /Unknown option '--speed'/],
  ])('rejects %j, naming the option', (argv, message) => {
    expect(() => parseChaosProxyArgs(argv)).toThrow(message);
  });

  it('runs as a process: listens, shapes, reports each second and on rate changes, closes on SIGTERM', async () => {
    // The target floods every connection, so the proxy's downstream link runs at its limit.
    const targetSockets: net.Socket[] = [];
    const server = net.createServer((socket) => {
      targetSockets.push(socket);
      socket.on('error', () => undefined);
      const piece = randomBytes(64 * 1024);
      const more = () => {
        while (!socket.destroyed && socket.write(piece));
      };
      socket.on('drain', more);
      socket.once('data', more);
    });
    const targetPort = await listenOnFreePort(server);
    const clients: net.Socket[] = [];
    // Runs even when an assertion fails, so nothing keeps jest waiting.
    await using _cleanup = {
      [Symbol.asyncDispose]: async () => {
        for (const client of clients) client.destroy();
        for (const socket of targetSockets) socket.destroy();
        await new Promise((resolve) => server.close(resolve));
      },
    };
    await using cli = startCli(['--target', `127.0.0.1:${targetPort}`, '--rate', '2mbit', '--delay', '20', '--schedule', '1s:full,25%', '--schedule-from', 'first-connection']);
    const [, host, port] = /^LISTENING AT: (.+):(\d+)$/.exec(await cli.waitForLine(/^LISTENING AT: /, { stream: 'stdout' }))!;
    const client = net.connect({ host, port: Number(port) });
    clients.push(client);
    client.on('error', () => undefined);
    await once(client, 'connect');
    await cli.waitForLine(/^RATE down 2\.000 Mbit\/s \(phase 1 of 2\)$/, { stream: 'stdout' });

    // 20 ms each way, measured from our side: the first byte back takes at least 40 ms.
    const sent = performance.now();
    client.write('go');
    await once(client, 'data');
    expect(performance.now() - sent).toBeGreaterThanOrEqual(40);
    client.on('data', () => undefined);

    await cli.waitForLine(/^RATE down 0\.500 Mbit\/s \(phase 2 of 2\)$/, { stream: 'stdout', timeoutMs: 5000 });
    // The first report after the change still covers part of phase 1; the second does not.
    await cli.waitForLine(/^FORWARDED /, { stream: 'stdout', newOnly: true });
    const report = await cli.waitForLine(/^FORWARDED /, { stream: 'stdout', newOnly: true });
    const match = /^FORWARDED Mbit\/s up ([\d.]+) down ([\d.]+) \| limit Mbit\/s up 0\.500 down 0\.500 \| connections 1$/.exec(report);
    expect(match).not.toBeNull();
    // 0.5 Mbit/s over one second; the burst (16 KiB, 0.13 Mbit) and a late timer may add a little.
    expect(Number(match![2])).toBeGreaterThan(0.35);
    expect(Number(match![2])).toBeLessThan(0.7);
    expect(Number(match![1])).toBeLessThan(0.01);

    const clientClosed = once(client, 'close');
    cli.signal('SIGTERM');
    expect(await cli.waitForExit()).toEqual({ code: 0, signal: null });
    await clientClosed;
  });

  it('prints JSON figures with --stats-json', async () => {
    await using cli = startCli(['--target', '127.0.0.1:9', '--down-rate', '1MB', '--stats-json']);
    const line = await cli.waitForLine(/^\{/, { stream: 'stdout' });
    expect(JSON.parse(line)).toEqual({
      time: expect.any(String),
      upMbps: 0,
      downMbps: 0,
      upLimitMbps: null,
      downLimitMbps: 8,
      upBytes: 0,
      downBytes: 0,
      connections: 0,
    });
    cli.signal('SIGINT');
    expect(await cli.waitForExit()).toEqual({ code: 0, signal: null });
  });

  it('prints its help, and exits with code 2 naming a bad option', async () => {
    await using help = startCli(['--help']);
    await help.waitForLine(/^ {2}--rate RATE\s+link capacity each way/, { stream: 'stdout' });
    expect(await help.waitForExit()).toEqual({ code: 0, signal: null });
    await using bad = startCli(['--target', '127.0.0.1:9', '--rate', 'fast']);
    await bad.waitForLine(/^chaos-proxy: --rate "fast": "fast" is not a rate/, { stream: 'stderr' });
    expect(await bad.waitForExit()).toEqual({ code: 2, signal: null });
  });
});
