import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processExists, readFrameNumber, renderFakeFrame } from '@camstream/testkit';
import { iterateNalUnits, splitAccessUnits } from '../src/annexb';
import { Mp4RecorderError, StreamMismatchError } from '../src/errors';
import { probeVideoFile } from '../src/ffprobe';
import { H264Encoder } from '../src/h264-encoder';
import { Mp4Recorder } from '../src/mp4-recorder';

const WIDTH = 320;
const HEIGHT = 240;
const FRAMES = 20;
const KEYFRAME_INTERVAL = 5;
/** Access units of fake frames 0..19, keyframes every 5. */
const units: Buffer[] = [];
let directory: string;

beforeAll(async () => {
  directory = mkdtempSync(join(tmpdir(), 'camstream-mp4-'));
  const encoder = new H264Encoder({ width: WIDTH, height: HEIGHT, fps: 30, keyframeInterval: KEYFRAME_INTERVAL, keepSpareProcess: false });
  try {
    for (let frame = 0; frame < FRAMES; frame++) units.push((await encoder.encode(renderFakeFrame(frame, WIDTH, HEIGHT))).data);
  } finally {
    await encoder.close();
  }
});

afterAll(() => rmSync(directory, { recursive: true, force: true }));

/** The H.264 in a file as Annex B, copied out without decoding. */
function bitstreamOf(path: string): Buffer {
  return execFileSync('ffmpeg', ['-v', 'error', '-i', path, '-c', 'copy', '-bsf:v', 'h264_mp4toannexb', '-f', 'h264', '-'], { maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'] });
}

const nalUnitsOf = (annexB: Buffer) => [...iterateNalUnits(annexB)].map((unit) => unit.data.toString('hex'));

/** The frame numbers of the file's pictures, decoded by ffmpeg. */
function frameNumbersOf(path: string): Array<number | null> {
  const raw = execFileSync('ffmpeg', ['-v', 'error', '-i', path, '-f', 'rawvideo', '-pix_fmt', 'bgr24', '-'], { maxBuffer: 64 * 1024 * 1024 });
  const frameBytes = WIDTH * HEIGHT * 3;
  const numbers: Array<number | null> = [];
  for (let at = 0; at + frameBytes <= raw.length; at += frameBytes) {
    numbers.push(readFrameNumber({ width: WIDTH, height: HEIGHT, channels: 3, data: raw.subarray(at, at + frameBytes) }));
  }
  return numbers;
}

describe('Mp4Recorder', () => {
  it.each([
    ['fragmented', true],
    ['faststart', false],
  ])('records the access units as they are (%s MP4): one frame each, timed by capture time', async (_name, fragmented) => {
    const path = join(directory, `capture-${fragmented}.mp4`);
    const recorder = new Mp4Recorder(path, { width: WIDTH, height: HEIGHT, fragmented });
    const start = 1_700_000_000_000;
    for (const [frame, unit] of units.entries()) await recorder.write(unit, { captureTime: start + (frame * 1000) / 30 });
    await recorder.close();
    expect(recorder.writtenFrames).toBe(FRAMES);
    const info = await probeVideoFile(path);
    expect(info).toMatchObject({ codec: 'h264', width: WIDTH, height: HEIGHT, frames: FRAMES, pixelFormat: 'yuv420p' });
    expect(info.formatName).toMatch(/mp4/);
    // 20 frames 1/30 s apart: the last starts at 19/30 s and lasts about a frame.
    expect(info.durationS).toBeGreaterThanOrEqual(19 / 30);
    expect(info.durationS).toBeLessThanOrEqual(21 / 30);
    // No re-encoding: the file's NAL units are byte for byte the ones given (start codes may differ).
    expect(nalUnitsOf(bitstreamOf(path))).toEqual(nalUnitsOf(Buffer.concat(units)));
  });

  it('starts the file at a keyframe: access units before the first one are skipped', async () => {
    const path = join(directory, 'late-join.mp4');
    const recorder = new Mp4Recorder(path, { width: WIDTH, height: HEIGHT, fps: 30 });
    for (const unit of units.slice(2)) await recorder.write(unit);
    await recorder.close();
    expect(recorder.skippedFrames).toBe(3);
    expect(recorder.writtenFrames).toBe(FRAMES - 5);
    expect((await probeVideoFile(path)).frames).toBe(FRAMES - 5);
    expect(frameNumbersOf(path)).toEqual([...Array(FRAMES - 5).keys()].map((index) => index + 5));
    // Constant rate: 15 frames at 30 fps.
    expect((await probeVideoFile(path)).durationS).toBeCloseTo(15 / 30, 1);
  });

  it('refuses a keyframe of another size and goes on from the next good keyframe', async () => {
    const path = join(directory, 'mismatch.mp4');
    const recorder = new Mp4Recorder(path, { width: WIDTH, height: HEIGHT, fps: 30 });
    const otherSize = new H264Encoder({ width: 160, height: 120, fps: 30, keepSpareProcess: false });
    const small = (await otherSize.encode(renderFakeFrame(0, 160, 120))).data;
    await otherSize.close();
    for (const unit of units.slice(0, 5)) await recorder.write(unit);
    await expect(recorder.write(small)).rejects.toThrow(StreamMismatchError);
    for (const unit of units.slice(5)) await recorder.write(unit);
    await recorder.close();
    expect(frameNumbersOf(path)).toEqual([...Array(FRAMES).keys()]);
  });

  it('needs capture times when no fps is given, and an existing directory', async () => {
    expect(() => new Mp4Recorder(join(directory, 'no', 'such', 'dir.mp4'), { width: WIDTH, height: HEIGHT })).toThrow(Mp4RecorderError);
    expect(() => new Mp4Recorder(join(directory, 'no', 'such', 'dir.mp4'), { width: WIDTH, height: HEIGHT })).toThrow(/the directory .*no\/such does not exist/);
    const recorder = new Mp4Recorder(join(directory, 'untimed.mp4'), { width: WIDTH, height: HEIGHT });
    await expect(recorder.write(units[0]!)).rejects.toThrow(/takes its timestamps from capture times/);
    await recorder.close();
    expect(processExists(recorder.pid)).toBe(false);
  });

  it('a fragmented recording killed outright keeps its complete fragments', async () => {
    const path = join(directory, 'killed.mp4');
    const recorder = new Mp4Recorder(path, { width: WIDTH, height: HEIGHT, fps: 30 });
    for (const unit of units) await recorder.write(unit);
    // Once ffmpeg has written the fragments that the keyframes at 5, 10 and 15 closed, kill it:
    // the last one (frames 15 to 19) is never finished.
    const bitstream = await waitForFile(path, () => {
      const bitstream = bitstreamOfOrEmpty(path);
      return bitstream.length > 0 && splitAccessUnits(bitstream).length >= 3 * KEYFRAME_INTERVAL;
    });
    expect(bitstream).toBe(true);
    recorder.kill();
    await expect(recorder.close()).rejects.toThrow(/recording .*killed.mp4 (stopped|failed): ffmpeg \(pid \d+\) was killed by SIGKILL/);
    expect(processExists(recorder.pid)).toBe(false);
    const numbers = frameNumbersOf(path);
    expect(numbers).toEqual([...Array(3 * KEYFRAME_INTERVAL).keys()]);
  });

  it('close() without any frame leaves nothing running', async () => {
    const recorder = new Mp4Recorder(join(directory, 'empty.mp4'), { width: WIDTH, height: HEIGHT, fps: 30 });
    await recorder.close();
    expect(recorder.writtenFrames).toBe(0);
    expect(processExists(recorder.pid)).toBe(false);
  });
});

function bitstreamOfOrEmpty(path: string): Buffer {
  try {
    return bitstreamOf(path);
  } catch {
    return Buffer.alloc(0); // not readable yet
  }
}

/** Polls until `ready` holds (ffmpeg writes fragments when it gets to them; no event tells us). */
async function waitForFile(path: string, ready: () => boolean, timeoutMs = 20_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (existsSync(path) && ready()) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}
