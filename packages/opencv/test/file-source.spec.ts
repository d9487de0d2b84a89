import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FrameSource, RawImage } from '@camstream/media';
import { SourceNotFoundError, SourceOpenError } from '../src/errors';
import { openRecorder } from '../src/recorder';
import { openSource } from '../src/sources';
import { TestPatternSource } from '../src/test-pattern';
import { meanAbsoluteError } from './support/images';

/** Serves argv[1] over HTTP on a free port, printing the port. */
const SERVE_FILE = `
const http = require('http'), fs = require('fs');
const server = http.createServer((request, response) => {
  response.writeHead(200, { 'content-type': 'video/x-msvideo' });
  fs.createReadStream(process.argv[1]).pipe(response);
});
// Not console.log: under FORCE_COLOR (set by nx) it wraps the number in colour codes.
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
`;

const WIDTH = 320;
const HEIGHT = 240;
const FPS = 25;
const FRAME_COUNT = 12;

describe('recording and playing back a file', () => {
  let directory: string;
  let video: string;
  const written: RawImage[] = [];
  let source: FrameSource | undefined;

  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), 'camstream-opencv-'));
    video = join(directory, 'pattern.avi');
    const pattern = new TestPatternSource(WIDTH, HEIGHT, 0);
    const recorder = await openRecorder(video, { fps: FPS, width: WIDTH, height: HEIGHT });
    for (let i = 0; i < FRAME_COUNT; i++) {
      const { image } = (await pattern.read())!;
      written.push(image);
      await recorder.write(image);
    }
    await recorder.close();
    expect(recorder.writtenFrames).toBe(FRAME_COUNT);
    expect(recorder.droppedFrames).toBe(0);
  });

  afterEach(async () => {
    await source?.close();
    source = undefined;
  });

  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  it('reports the file size and rate, plays every frame at that rate, then ends with null', async () => {
    source = await openSource(video, {});
    expect(source.info).toEqual({ description: `file ${video}`, width: WIDTH, height: HEIGHT, fps: FPS, live: false });
    const start = performance.now();
    const frames: RawImage[] = [];
    for (let frame = await source.read(); frame; frame = await source.read()) frames.push(frame.image);
    const elapsed = performance.now() - start;
    expect(frames).toHaveLength(FRAME_COUNT);
    expect(await source.read()).toBeNull();
    // 11 intervals of 40 ms; loosely, since machines are noisy.
    expect(elapsed).toBeGreaterThanOrEqual(300);
    frames.forEach((frame, i) => {
      expect(frame).toMatchObject({ width: WIDTH, height: HEIGHT, channels: 3 });
      expect(meanAbsoluteError(frame, written[i]!)).toBeLessThan(6); // MJPG is lossy, but it is the same picture
    });
    expect(meanAbsoluteError(frames[0]!, written[5]!)).toBeGreaterThan(meanAbsoluteError(frames[0]!, written[0]!));
  });

  it('loops past the end when asked to', async () => {
    source = await openSource(video, { loop: true, fps: 0 });
    expect(source.info.fps).toBe(0);
    const frames: RawImage[] = [];
    for (let i = 0; i < FRAME_COUNT * 2 + 3; i++) {
      const frame = await source.read();
      expect(frame).not.toBeNull();
      frames.push(frame!.image);
    }
    // The second lap starts with the first frame again.
    expect(meanAbsoluteError(frames[FRAME_COUNT]!, frames[0]!)).toBeLessThan(1);
  });

  it('scales frames to a requested size, keeping the aspect ratio when only the width is given', async () => {
    source = await openSource(video, { width: 160, fps: 0 });
    expect(source.info).toMatchObject({ width: 160, height: 120 });
    const frame = await source.read();
    expect(frame?.image).toMatchObject({ width: 160, height: 120, channels: 3 });
    expect(frame?.image.data.length).toBe(160 * 120 * 3);
  });

  it('opens a stream URL as a live source (an HTTP server in another process serves the file)', async () => {
    // Another process: opening a capture is synchronous, so a server on this event loop could not answer.
    const server = spawn(process.execPath, ['-e', SERVE_FILE, video], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const port = await new Promise<string>((resolve, reject) => {
        server.stdout!.once('data', (chunk: Buffer) => resolve(chunk.toString().trim()));
        server.once('exit', (code) => reject(new Error(`file server exited with ${code}`)));
      });
      const url = `http://user:secret@127.0.0.1:${port}/pattern.avi`;
      source = await openSource(url, { width: 160, height: 120 });
      expect(source.info).toMatchObject({ description: `stream http://user:***@127.0.0.1:${port}/pattern.avi`, width: 160, height: 120, fps: FPS, live: true });
      let count = 0;
      while (await source.read()) count++;
      expect(count).toBe(FRAME_COUNT);
    } finally {
      server.kill();
    }
  });

  it('names a missing file', async () => {
    const missing = join(directory, 'no-such-video.avi');
    await expect(openSource(missing, {})).rejects.toThrow(SourceNotFoundError);
    await expect(openSource(missing, {})).rejects.toThrow(`video file not found: ${missing}`);
  });

  it('says so when a file exists but is not a video', async () => {
    const text = join(directory, 'notes.avi');
    writeFileSync(text, 'these are not video frames\n'.repeat(100));
    await expect(openSource(text, {})).rejects.toThrow(SourceOpenError);
    await expect(openSource(text, {})).rejects.toThrow(/cannot open video file .*notes\.avi: OpenCV cannot decode it/);
  });

  it('records frames of another size scaled to the recording size', async () => {
    const path = join(directory, 'scaled.avi');
    const recorder = await openRecorder(path, { fps: 10, width: WIDTH, height: HEIGHT });
    const small = new TestPatternSource(160, 120, 0);
    for (let i = 0; i < 3; i++) await recorder.write((await small.read())!.image);
    await recorder.close();
    source = await openSource(path, { fps: 0 });
    expect(source.info).toMatchObject({ width: WIDTH, height: HEIGHT, fps: 0 });
    let count = 0;
    while (await source.read()) count++;
    expect(count).toBe(3);
  });

  it('refuses to record into a directory that does not exist, naming it', async () => {
    const path = join(directory, 'missing-dir', 'out.avi');
    await expect(openRecorder(path, { fps: 10, width: 64, height: 48 })).rejects.toThrow(`the directory ${join(directory, 'missing-dir')} does not exist`);
  });

  it('refuses a codec the container cannot hold', async () => {
    const path = join(directory, 'bad-codec.avi');
    await expect(openRecorder(path, { fps: 10, width: 64, height: 48, fourcc: 'ZZZZ' })).rejects.toThrow(/could not open it for writing with codec ZZZZ/);
  });
});

describe('cameras', () => {
  const noCamera = !existsSync('/dev/video0');
  (noCamera ? it : it.skip)('camera 0 is reported as not found when there is no /dev/video0', async () => {
    await expect(openSource('0', {})).rejects.toThrow(SourceNotFoundError);
    await expect(openSource('camera:0', {})).rejects.toThrow('camera 0 not found (no /dev/video0)');
  });
});
