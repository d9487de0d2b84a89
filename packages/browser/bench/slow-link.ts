/**
 * The browser page through a slow link: a 720p30 JPEG test pattern served by BrowserServer to
 * headless Chromium through the testkit's chaos proxy (its CLI, in a process of its own, like a
 * network), limited to a fraction (default 55 %) of the stream's bitrate with a 20 ms round trip. Prints, once a second, what the page and the
 * server see, and at the end the page's own capture -> display latency over the last seconds,
 * the frames it showed and the rungs they were on. A script that prints figures, not a test.
 *
 *   npx nx run browser:bench -- [--seconds 30] [--fraction 0.55] [--rtt 20] [--size 1280x720]
 *                               [--fps 30] [--quality 80] [--last 10] [--adapt on|off] [--burst BYTES] [--mjpeg]
 *
 * --burst sets the link's token-bucket depth (default: the proxy's, 16 KiB or 10 ms of the rate):
 * a frame smaller than the burst that finds the link idle crosses it at loopback speed, which no
 * serial link does. --mjpeg also reads /stream.mjpg through the same kind of link for the same
 * time (no acknowledgements there) and prints its latency, for comparison.
 */
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { parseArgs } from 'node:util';
import type { FrameSource } from '@camstream/media';
import { OpenCVCodec, openSource } from '@camstream/opencv';
import { startProcess, type AppProcess } from '@camstream/testkit';
import { chromium, type Page } from 'playwright-core';
import { BrowserServer } from '../src';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

interface Settings {
  seconds: number;
  fraction: number;
  rttMs: number;
  width: number;
  height: number;
  fps: number;
  quality: number;
  lastSeconds: number;
  adapt: boolean;
  burstBytes: number | undefined;
  mjpeg: boolean;
}

function settingsFrom(argv: string[]): Settings {
  const { values } = parseArgs({
    args: argv,
    options: {
      seconds: { type: 'string', default: '30' },
      fraction: { type: 'string', default: '0.55' },
      rtt: { type: 'string', default: '20' },
      size: { type: 'string', default: '1280x720' },
      fps: { type: 'string', default: '30' },
      quality: { type: 'string', default: '80' },
      last: { type: 'string', default: '10' },
      adapt: { type: 'string', default: 'on' },
      burst: { type: 'string' },
      mjpeg: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${readFileSync(__filename, 'utf8').split('*/')[0]}*/\n`);
    process.exit(0);
  }
  const size = /^(\d+)x(\d+)$/.exec(values.size);
  if (!size) throw new Error(`--size must be WIDTHxHEIGHT, got ${values.size}`);
  const number = (name: string, text: string, min: number) => {
    const n = Number(text);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}, got ${text}`);
    return n;
  };
  if (values.adapt !== 'on' && values.adapt !== 'off') throw new Error(`--adapt must be on or off, got ${values.adapt}`);
  const settings: Settings = {
    seconds: number('seconds', values.seconds, 1),
    fraction: number('fraction', values.fraction, 0.01),
    rttMs: number('rtt', values.rtt, 0),
    width: Number(size[1]),
    height: Number(size[2]),
    fps: number('fps', values.fps, 1),
    quality: number('quality', values.quality, 1),
    lastSeconds: number('last', values.last, 1),
    adapt: values.adapt === 'on',
    burstBytes: values.burst === undefined ? undefined : number('burst', values.burst, 1),
    mjpeg: values.mjpeg,
  };
  if (settings.lastSeconds > settings.seconds) throw new Error(`--last (${settings.lastSeconds}) must not exceed --seconds (${settings.seconds})`);
  return settings;
}

/** The chaos proxy's CLI in a process of its own, forwarding to `port` through the link. */
async function startLinkProcess(settings: Settings, port: number, bytesPerSecond: number): Promise<{ process: AppProcess; host: string; port: number; downBytes(): number }> {
  const args = [
    '--target', `127.0.0.1:${port}`, '--down-rate', `${Math.round(bytesPerSecond)}B`, '--up-rate', 'unlimited',
    '--delay', String(settings.rttMs / 2), '--stats-json',
    ...(settings.burstBytes === undefined ? [] : ['--burst', String(settings.burstBytes)]),
  ];
  const proxy = startProcess('node', ['packages/testkit/bin/chaos-proxy', ...args], { name: 'chaos-proxy' });
  const line = await proxy.waitForLine(/^LISTENING AT: /, { stream: 'stdout' });
  const [host, listenPort] = line.slice('LISTENING AT: '.length).trim().split(/:(?=\d+$)/);
  return {
    process: proxy,
    host: host!,
    port: Number(listenPort),
    downBytes: () => {
      for (let i = proxy.stdoutLines.length - 1; i >= 0; i--) {
        const text = proxy.stdoutLines[i]!;
        if (text.startsWith('{')) return (JSON.parse(text) as { downBytes: number }).downBytes;
      }
      return 0;
    },
  };
}

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const ms = (value: number) => (Number.isFinite(value) ? value.toFixed(0).padStart(5) : '    –');
const mbit = (bytesPerSecond: number) => ((bytesPerSecond * 8) / 1e6).toFixed(2);

interface PageSample {
  at: number;
  /** Capture -> display. */
  ms: number;
  seq: number;
  rung: number;
  /** Arrival of the frame's last byte -> display: the page's own share. */
  drawMs: number;
}

/** Everything the page's own figures say, from window.camstreamViewer. */
async function pageFigures(page: Page): Promise<{ samples: PageSample[]; shown: number; serverSkipped: number; skipped: number; now: number }> {
  return page.evaluate(
    `(() => { const v = window.camstreamViewer; return { samples: v.tab.latencies.slice(), shown: v.tab.shown, serverSkipped: v.tab.serverSkipped, skipped: v.tab.skipped, now: performance.now() }; })()`,
  ) as Promise<{ samples: PageSample[]; shown: number; serverSkipped: number; skipped: number; now: number }>;
}

/** Publishes the source's frames as a receiver would: the JPEG as received, then its decoded image. */
function startStreaming(source: FrameSource, server: BrowserServer, settings: Settings): { stop(): Promise<void>; published: Array<{ at: number; ms: number }> } {
  const senderCodec = new OpenCVCodec();
  const receiverCodec = new OpenCVCodec();
  let stopped = false;
  let seq = 0;
  /** Capture -> published (encoded as a JPEG, decoded, lower rungs encoded, handed to the tabs). */
  const published: Array<{ at: number; ms: number }> = [];
  const done = (async () => {
    while (!stopped) {
      const frame = await source.read();
      if (!frame || stopped) return;
      const jpeg = await senderCodec.encode(frame.image, 'jpeg', { quality: settings.quality });
      const meta = { seq: seq++, captureTime: frame.captureTimeMs };
      server.received({ ...meta, width: settings.width, height: settings.height, encoding: 'jpeg' }, jpeg);
      const decoded = await receiverCodec.decode(jpeg, 'jpeg', { width: settings.width, height: settings.height, channels: 3 });
      await server.write(decoded, meta);
      published.push({ at: performance.now(), ms: performance.timeOrigin + performance.now() - frame.captureTimeMs });
      if (published.length > 10_000) published.splice(0, 5_000);
    }
  })();
  return {
    published,
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}

/** The stream's bitrate in bytes/s: the test pattern encoded for a second. */
async function measureBitrate(settings: Settings): Promise<number> {
  const source = await openSource('test', { width: settings.width, height: settings.height, fps: 0 });
  const codec = new OpenCVCodec();
  let total = 0;
  const frames = Math.round(settings.fps);
  try {
    for (let i = 0; i < frames; i++) {
      const frame = (await source.read())!;
      total += (await codec.encode(frame.image, 'jpeg', { quality: settings.quality })).length;
    }
  } finally {
    await source.close();
  }
  return (total / frames) * settings.fps;
}

/** Reads /stream.mjpg through its own slow link and records each part's latency on arrival. */
async function measureMjpeg(server: BrowserServer, settings: Settings, linkBytesPerSecond: number): Promise<number[]> {
  const proxy = await startLinkProcess(settings, server.port, linkBytesPerSecond);
  const latencies: Array<{ at: number; ms: number }> = [];
  await new Promise<void>((resolve, reject) => {
    const req = request({ host: proxy.host, port: proxy.port, path: '/stream.mjpg' }, (res) => {
      let text = '';
      res.setEncoding('latin1');
      res.on('data', (chunk: string) => {
        text += chunk;
        // Each part header names its capture time; the part is complete Content-Length bytes later.
        for (;;) {
          const match = /X-Capture-Time: ([\d.]+)\r\n\r\n/.exec(text);
          const length = /Content-Length: (\d+)/.exec(text);
          if (!match || !length) break;
          const bodyStart = match.index + match[0].length;
          const partEnd = bodyStart + Number(length[1]) + 2;
          if (text.length < partEnd) break;
          latencies.push({ at: performance.now(), ms: performance.timeOrigin + performance.now() - Number(match[1]) });
          text = text.slice(partEnd);
        }
      });
      res.on('error', () => undefined);
      setTimeout(() => {
        req.destroy();
        resolve();
      }, settings.seconds * 1000);
    });
    req.on('error', (err) => (latencies.length > 0 ? resolve() : reject(err)));
    req.end();
  });
  await proxy.process.kill();
  const from = performance.now() - settings.lastSeconds * 1000;
  return latencies.filter((l) => l.at >= from).map((l) => l.ms);
}

async function main(): Promise<void> {
  const settings = settingsFrom(process.argv.slice(2));
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is not installed (apt-get install chromium)`);
  const streamBytesPerSecond = await measureBitrate(settings);
  const linkBytesPerSecond = streamBytesPerSecond * settings.fraction;
  process.stdout.write(
    `stream: ${settings.width}x${settings.height} JPEG q${settings.quality} at ${settings.fps} fps, ${mbit(streamBytesPerSecond)} Mbit/s\n` +
      `link: ${mbit(linkBytesPerSecond)} Mbit/s (${Math.round(settings.fraction * 100)} %), ${settings.rttMs} ms round trip, ` +
      `burst ${settings.burstBytes === undefined ? "the proxy's default" : `${settings.burstBytes} bytes`}; ` +
      `adaptation ${settings.adapt ? 'on' : 'off'}; ${settings.seconds} s, figures over the last ${settings.lastSeconds} s\n`,
  );

  const server = await BrowserServer.listen({ host: '127.0.0.1', port: 0, title: 'slow-link bench', codec: new OpenCVCodec(), adapt: settings.adapt });
  const source = await openSource('test', { width: settings.width, height: settings.height, fps: settings.fps });
  const streaming = startStreaming(source, server, settings);
  const proxy = await startLinkProcess(settings, server.port, linkBytesPerSecond);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`http://${proxy.host}:${proxy.port}/`);
    const started = performance.now();
    process.stdout.write('   s  shown fps  p50 ms  p99 ms  rung  skipped by server  capacity Mbit/s  window KiB  link use\n');
    let lastForwarded = proxy.downBytes();
    let lastShown = 0;
    for (let second = 1; second <= settings.seconds; second++) {
      await new Promise((resolve) => setTimeout(resolve, started + second * 1000 - performance.now()));
      const figures = await pageFigures(page);
      const recent = figures.samples.filter((s) => s.at >= figures.now - 1000);
      const tab = server.clients.find((c) => c.kind === 'tab')?.tab;
      const forwarded = proxy.downBytes();
      process.stdout.write(
        `${String(second).padStart(4)}  ${String(figures.shown - lastShown).padStart(9)}  ${ms(percentile(recent.map((s) => s.ms), 50))}   ${ms(percentile(recent.map((s) => s.ms), 99))}` +
          `  ${String(recent.at(-1)?.rung ?? '–').padStart(4)}  ${String(figures.serverSkipped).padStart(17)}` +
          `  ${(tab?.capacityBytesPerSecond === undefined ? '–' : mbit(tab.capacityBytesPerSecond)).padStart(15)}` +
          `  ${(tab ? (tab.windowBytes / 1024).toFixed(0) : '–').padStart(10)}  ${((100 * (forwarded - lastForwarded)) / linkBytesPerSecond).toFixed(0).padStart(7)} %\n`,
      );
      lastForwarded = forwarded;
      lastShown = figures.shown;
    }
    const figures = await pageFigures(page);
    const window = figures.samples.filter((s) => s.at >= figures.now - settings.lastSeconds * 1000);
    const latencies = window.map((s) => s.ms);
    const rungs = new Map<number, number>();
    for (const s of window) rungs.set(s.rung, (rungs.get(s.rung) ?? 0) + 1);
    const p99 = percentile(latencies, 99);
    const recentPublished = streaming.published.filter((p) => p.at >= performance.now() - settings.lastSeconds * 1000).map((p) => p.ms);
    process.stdout.write(
      `\npage, last ${settings.lastSeconds} s: ${latencies.length} frames shown (${(latencies.length / settings.lastSeconds).toFixed(1)} fps of ${settings.fps}), ` +
        `capture -> display p50 ${percentile(latencies, 50).toFixed(0)} / p95 ${percentile(latencies, 95).toFixed(0)} / p99 ${p99.toFixed(0)} / max ${Math.max(...latencies).toFixed(0)} ms ` +
        `(of which arrival -> display p50 ${percentile(window.map((s) => s.drawMs), 50).toFixed(0)} / p99 ${percentile(window.map((s) => s.drawMs), 99).toFixed(0)} ms)\n` +
        `server, capture -> published (JPEG encode as the sender, decode as the receiver, lower rungs): ` +
        `p50 ${percentile(recentPublished, 50).toFixed(0)} / p99 ${percentile(recentPublished, 99).toFixed(0)} ms\n` +
        `rungs shown: ${[...rungs].sort(([a], [b]) => a - b).map(([rung, n]) => `${rung}: ${n}`).join(', ')}; ` +
        `skipped by server ${figures.serverSkipped}, skipped in the tab ${figures.skipped}\n` +
        `target p99 <= 200 ms: ${p99 <= 200 ? 'met' : 'NOT met'}\n`,
    );
  } finally {
    await browser.close();
    await proxy.process.kill();
  }
  if (settings.mjpeg) {
    const latencies = await measureMjpeg(server, settings, linkBytesPerSecond);
    process.stdout.write(
      `/stream.mjpg through the same link, last ${settings.lastSeconds} s: ${latencies.length} frames, ` +
        `latency on arrival p50 ${percentile(latencies, 50).toFixed(0)} / p99 ${percentile(latencies, 99).toFixed(0)} / max ${Math.max(...latencies).toFixed(0)} ms\n`,
    );
  }
  await streaming.stop();
  await source.close();
  await server.close();
}

main().catch((err: unknown) => {
  process.stderr.write(`slow-link bench: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
