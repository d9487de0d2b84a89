import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FrameSource, RawImage } from '@camstream/media';
import { OpenCVCodec } from '@camstream/opencv';
import { Broadcast, pumpFrames, StreamServer } from '@camstream/sender';
import { FakeCamera, processExists, readFrameNumber, startApp } from '@camstream/testkit';
import { chromium, type Browser } from 'playwright-core';
import { pump, startReceiver, startServerWith, until } from './harness';

// H.264 through the real apps (issue 13): a sender in this process (the fake camera, whose frame
// numbers survive compression, and real x264 encoders) to the receiver - in process for content
// checks, and as the app for the MP4 recording, TLS with a secret, and a page in Chromium (WebCodecs
// on localhost, JPEG where the page is no secure context).

jest.setTimeout(120_000);

const WIDTH = 320;
const HEIGHT = 240;
const headless = { DISPLAY: undefined, WAYLAND_DISPLAY: undefined };
const codec = new OpenCVCodec();
let workDir: string;

beforeAll(() => {
  workDir = mkdtempSync(path.join(tmpdir(), 'camstream-h264-'));
});
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

/** An h264 sender as the app wires it: Broadcast (x264 per rung in use), StreamServer, pumpFrames. */
async function startH264Sender(source: FrameSource, options: { keyframeIntervalSeconds?: number } = {}) {
  const { width, height, fps } = source.info;
  const broadcast = new Broadcast({
    codec,
    stream: { width, height, fps, pixelFormat: 'bgr24', encoding: 'h264', bitrate: 600_000, source: 'fake camera' },
    h264: { keyframeIntervalSeconds: options.keyframeIntervalSeconds ?? 1 },
  });
  const server = await StreamServer.listen({ host: '127.0.0.1', port: 0, broadcast, maxViewers: 8 });
  const stop = new AbortController();
  let pumping: Promise<unknown> | undefined;
  return {
    server,
    broadcast,
    pump: () => (pumping = pumpFrames({ source, broadcast, signal: stop.signal })),
    async close() {
      stop.abort();
      await pumping;
      await server.close('test over');
      await broadcast.close();
    },
  };
}

describe('an h264 stream through the receiver', () => {
  it('decodes to the pictures captured, and a late joiner gets a picture at once from the keyframe on', async () => {
    const camera = new FakeCamera({ width: WIDTH, height: HEIGHT, fps: 30 });
    const sender = await startH264Sender(camera);
    try {
      const first = startReceiver(sender.server.port, { maxFrames: 90 });
      await until(() => sender.server.viewerList.length === 1, 'the first receiver to join');
      void sender.pump();
      // Mid-GOP (keyframes every 30 frames): the late joiner's first frame is the last keyframe.
      await until(() => first.sink.numbers.length >= 45, 'the first receiver to show 45 frames', 60_000);
      const late = startReceiver(sender.server.port, { maxFrames: 30, name: 'late joiner' });
      expect(await first.result).toEqual({ outcome: 'frames-reached' });
      expect(await late.result).toEqual({ outcome: 'frames-reached' });
      for (const receiver of [first, late]) {
        const summary = receiver.stats.summary();
        expect(summary.corrupt).toBe(0);
        expect(receiver.sink.numbers.length).toBeGreaterThan(0);
        // Shown in order, each picture the fake camera's frame of that number (within compression).
        expect(receiver.sink.numbers).toEqual([...receiver.sink.numbers].sort((a, b) => a - b));
        expect(receiver.sink.worstDifference).toBeLessThan(12);
      }
      // The late joiner's first picture is from before it joined: the GOP since the last keyframe.
      expect(late.sink.numbers[0]!).toBeLessThan(first.sink.numbers.at(-1)!);
      expect(late.sink.numbers[0]! % 30).toBe(0);
    } finally {
      await sender.close();
    }
  });

  it('--record FILE.mp4 writes the access units as received: ffprobe reads h264 at the stream size, every frame recorded', async () => {
    const frames = 75;
    const camera = new FakeCamera({ width: WIDTH, height: HEIGHT, fps: 30, frames });
    const sender = await startH264Sender(camera);
    const file = path.join(workDir, 'recording.mp4');
    try {
      await using receiver = startApp('receiver', ['--port', String(sender.server.port), '--record', file, '--no-reconnect', '--display', 'off', '--stats-json', '--quiet'], { env: headless });
      await until(() => sender.server.viewerList.length === 1, 'the receiver to join', 30_000);
      await sender.pump();
      await sender.server.close('end of stream');
      expect(await receiver.waitForExit(30_000)).toEqual({ code: 0, signal: null });
      const summary = JSON.parse(receiver.stdoutLines.findLast((l) => l.includes('"summary"'))!) as { frames: number; corrupt: number };
      expect(summary).toMatchObject({ frames, corrupt: 0 });
      const [, written] = /recorded (\d+) frames to .*recording\.mp4 \(H\.264 as received/.exec(receiver.stderrLines.join('\n'))!.map(Number);
      expect(written).toBe(frames);
      const probe = JSON.parse(
        execFileSync('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=codec_name,width,height,nb_read_frames', '-of', 'json', file], { encoding: 'utf8' }),
      ) as { streams: Array<{ codec_name: string; width: number; height: number; nb_read_frames: string }> };
      expect(probe.streams[0]).toEqual({ codec_name: 'h264', width: WIDTH, height: HEIGHT, nb_read_frames: String(frames) });
      // The first and last pictures in the file are the fake camera's first and last frames.
      const firstAndLast = [0, frames - 1].map((n) => readFrameNumber(frameOfFile(file, n)));
      expect(firstAndLast).toEqual([0, frames - 1]);
    } finally {
      await sender.close();
    }
  });

  it('streams h264 over TLS to a receiver that proves the secret (the apps, end to end)', async () => {
    const cert = path.join(workDir, 'sender.pem');
    const key = path.join(workDir, 'sender.key');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    const env = { ...headless, CAMSTREAM_SECRET: 'h264 over tls' };
    await using sender = startApp('sender', ['--source', 'test', '--size', '320x240', '--fps', '30', '--codec', 'h264', '--bitrate', '500k', '--port', '0', '--tls-cert', cert, '--tls-key', key, '--quiet'], { env });
    const address = /LISTENING AT: (\S+)/.exec(await sender.waitForLine(/LISTENING AT: /, { timeoutMs: 30_000 }))![1]!;
    const port = address.split(':').at(-1)!;
    const fingerprint = new X509Certificate(execFileSync('cat', [cert])).fingerprint256;
    await using receiver = startApp('receiver', ['--port', port, '--tls-fingerprint', fingerprint, '--frames', '40', '--no-reconnect', '--display', 'off', '--stats-json', '--quiet'], { env });
    expect(await receiver.waitForExit(60_000)).toEqual({ code: 0, signal: null });
    const summary = JSON.parse(receiver.stdoutLines.findLast((l) => l.includes('"summary"'))!) as { frames: number; shown: number; corrupt: number };
    expect(summary.frames).toBe(40);
    expect(summary.corrupt).toBe(0);
    expect(summary.shown).toBeGreaterThan(0);
    expect(receiver.stderrLines.join('\n')).toMatch(/h264/);
  });
});

describe("the receiver app's H.264 decoder, started by its launcher before the app loads", () => {
  /** A CAMSTREAM_FFMPEG that notes the pid of every ffmpeg it starts, then becomes the real ffmpeg. */
  function countingFfmpeg(): { program: string; started: () => number[] } {
    const dir = mkdtempSync(path.join(workDir, 'ffmpeg-'));
    const program = path.join(dir, 'ffmpeg');
    const log = path.join(dir, 'started');
    writeFileSync(program, `#!/bin/sh\necho $$ >> '${log}'\nexec ffmpeg "$@"\n`, { mode: 0o755 });
    return { program, started: () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').map(Number) : []) };
  }

  it('decodes an H.264 stream: one ffmpeg started in all, none left after the run', async () => {
    const ffmpeg = countingFfmpeg();
    const camera = new FakeCamera({ width: WIDTH, height: HEIGHT, fps: 30 });
    const sender = await startH264Sender(camera);
    void sender.pump();
    try {
      await using receiver = startApp('receiver', ['--port', String(sender.server.port), '--frames', '20', '--no-reconnect', '--display', 'off', '--stats-json', '--quiet'], {
        env: { ...headless, CAMSTREAM_FFMPEG: ffmpeg.program },
      });
      expect(await receiver.waitForExit(60_000)).toEqual({ code: 0, signal: null });
      const summary = JSON.parse(receiver.stdoutLines.findLast((l) => l.includes('"summary"'))!) as { frames: number; shown: number; corrupt: number };
      expect(summary).toMatchObject({ frames: 20, corrupt: 0 });
      expect(summary.shown).toBeGreaterThan(0);
      // Had the app not used the one started ahead, there would be two.
      expect(ffmpeg.started()).toHaveLength(1);
      await until(() => !processExists(ffmpeg.started()[0]!), 'the decoder to end with the receiver');
    } finally {
      await sender.close();
    }
  });

  it('ends it at the hello of a JPEG stream, and --help starts none', async () => {
    const ffmpeg = countingFfmpeg();
    const camera = new FakeCamera({ width: WIDTH, height: HEIGHT, fps: 30 });
    const server = await startServerWith(camera, 'jpeg');
    const stop = new AbortController();
    const pumping = pump(server, camera, stop.signal);
    try {
      await using receiver = startApp('receiver', ['--port', String(server.port), '--no-reconnect', '--display', 'off', '--stats-json'], {
        env: { ...headless, CAMSTREAM_FFMPEG: ffmpeg.program },
      });
      await receiver.waitForLine(/first picture \d+ ms after connecting/, { stream: 'stderr', timeoutMs: 60_000 });
      // (Its pid is noted by a shell of its own, which a loaded machine may run late.)
      await until(() => ffmpeg.started().length > 0, 'the launcher to start a decoder');
      expect(ffmpeg.started()).toHaveLength(1);
      // Gone while the receiver goes on receiving JPEG.
      await until(() => !processExists(ffmpeg.started()[0]!), 'the unused decoder to end');
      expect(receiver.exitedWith).toBeUndefined();

      await using help = startApp('receiver', ['--help'], { env: { ...headless, CAMSTREAM_FFMPEG: ffmpeg.program } });
      expect((await help.waitForExit(20_000)).code).toBe(0);
      expect(ffmpeg.started()).toHaveLength(1);
    } finally {
      stop.abort();
      await pumping;
      await server.close('test over');
      await camera.close();
    }
  });
});

/** Picture `n` of a video file, decoded by ffmpeg (BGR). */
function frameOfFile(file: string, n: number): RawImage {
  const data = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-vf', `select=eq(n\\,${n})`, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'bgr24', '-'], { maxBuffer: 16 << 20 });
  return { width: WIDTH, height: HEIGHT, channels: 3, data };
}

const CHROMIUM = '/usr/bin/chromium';
(existsSync(CHROMIUM) ? describe : describe.skip)('an h264 stream in Chromium', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // camstream.test resolves to 127.0.0.1: a page served from there is no secure context.
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--host-resolver-rules=MAP camstream.test 127.0.0.1'],
    });
  });
  afterAll(async () => {
    await browser?.close();
  });

  for (const [where, host, path_, codecShown] of [
    ['on localhost, decoded with WebCodecs', '127.0.0.1', 'H.264 (WebCodecs)', 'H.264'],
    ['elsewhere (no secure context), as JPEG', 'camstream.test', 'JPEG: not a secure context', 'JPEG'],
  ] as const) {
    it(`shows the right frame ${where}, and says which path it is on`, async () => {
      const camera = new FakeCamera({ width: WIDTH, height: HEIGHT, fps: 20 });
      const sender = await startH264Sender(camera);
      void sender.pump();
      const page = await browser.newPage({ viewport: { width: 900, height: 700 } });
      try {
        await using receiver = startApp('receiver', ['--port', String(sender.server.port), '--http', '0', '--display', 'off', '--quiet'], { env: headless });
        const line = await receiver.waitForLine(/browser viewer at (http:\/\/\S+)/, { stream: 'stderr', timeoutMs: 30_000 });
        const url = new URL(/browser viewer at (http:\/\/\S+)/.exec(line)![1]!);
        url.hostname = host;
        await page.goto(url.href);
        // The page says which path it is on, and the codec of the frame it drew last.
        await page.locator('#tab-transport', { hasText: path_ }).waitFor({ timeout: 30_000 });
        await page.locator('#tab-transport', { hasText: `now ${codecShown}` }).waitFor({ timeout: 30_000 });
        const readShownFrame = async (): Promise<number | null> => {
          const box = await page.locator('canvas').first().boundingBox();
          if (!box || box.width < WIDTH) return null;
          const png = await page.screenshot({ clip: { x: Math.round(box.x), y: Math.round(box.y), width: WIDTH, height: HEIGHT } });
          return readFrameNumber(await codec.decode(png, 'png', { width: WIDTH, height: HEIGHT, channels: 3 }));
        };
        let first: number | null = null;
        for (let i = 0; i < 100 && first === null; i++) {
          first = await readShownFrame();
          if (first === null) await page.waitForTimeout(200);
        }
        expect(first).not.toBeNull();
        // The picture advances: the next frame read shows a later number.
        let later: number | null = first;
        for (let i = 0; i < 50 && (later === null || later <= first!); i++) {
          await page.waitForTimeout(100);
          later = await readShownFrame();
        }
        expect(later!).toBeGreaterThan(first!);
        // The server forwarded H.264 to this tab, or JPEG only.
        const stats = (await (await fetch(new URL('stats.json', url.href.replace(host, '127.0.0.1')))).json()) as { clients: Array<{ kind: string; tab?: { decodes: string } }> };
        expect(stats.clients.find((c) => c.kind === 'tab')?.tab?.decodes).toBe(codecShown === 'H.264' ? 'h264' : 'jpeg');
      } finally {
        await page.close();
        await sender.close();
      }
    });
  }
});
