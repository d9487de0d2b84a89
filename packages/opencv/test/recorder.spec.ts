import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RawImage } from '@camstream/media';
import { RecorderError } from '../src/errors';
import { RecorderProcess, startRecorder } from '../src/recorder';
import { openSource } from '../src/sources';

// A recorder takes frames while its process is still starting (loading OpenCV takes it a second or
// two), so the first frames of a stream reach the file. Frames are uniform gray levels 20 apart,
// which Motion JPEG keeps to within a level or two, so each can be recognised when read back.

const WIDTH = 160;
const HEIGHT = 120;

function grayFrame(index: number): RawImage {
  return { width: WIDTH, height: HEIGHT, channels: 3, data: Buffer.alloc(WIDTH * HEIGHT * 3, 20 + index * 20) };
}

/** The gray level of each frame of a video file, as the index it was written with. */
async function frameIndexes(path: string): Promise<number[]> {
  const source = await openSource(path, { fps: 0 });
  const indexes: number[] = [];
  try {
    for (let frame = await source.read(); frame; frame = await source.read()) {
      const { data } = frame.image;
      let sum = 0;
      for (const value of data) sum += value;
      indexes.push(Math.round((sum / data.length - 20) / 20));
    }
  } finally {
    await source.close();
  }
  return indexes;
}

describe('a recorder that is still starting', () => {
  let directory: string;
  beforeAll(() => {
    directory = mkdtempSync(join(tmpdir(), 'camstream-recorder-'));
  });
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  it('takes up to maxPendingFrames frames at once, and records them first', async () => {
    const path = join(directory, 'early.avi');
    const recorder = startRecorder(path, { fps: 10, width: WIDTH, height: HEIGHT, maxPendingFrames: 4 });
    let open = false;
    void recorder.opened.then(() => (open = true));
    // Each write settles before the file is open: the caller is not held up.
    for (let i = 0; i < 4; i++) {
      const frame = grayFrame(i);
      await recorder.write(frame);
      frame.data.fill(0); // a taken frame was copied: the caller may reuse its buffer at once
    }
    expect(open).toBe(false);
    // The fifth waits for the file like any frame once the recorder is open.
    await recorder.write(grayFrame(4));
    expect(open).toBe(true);
    await recorder.write(grayFrame(5));
    await recorder.close();
    expect(recorder.writtenFrames).toBe(6);
    expect(recorder.droppedFrames).toBe(0);
    expect(await frameIndexes(path)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('can use a process started before it knew what to record', async () => {
    const prestarted = RecorderProcess.start();
    const path = join(directory, 'prestarted.avi');
    const recorder = startRecorder(path, { fps: 10, width: WIDTH, height: HEIGHT }, prestarted);
    expect(prestarted.take()).toBeUndefined(); // handed over, once
    for (let i = 0; i < 3; i++) await recorder.write(grayFrame(i));
    await recorder.opened;
    await recorder.close();
    expect(await frameIndexes(path)).toEqual([0, 1, 2]);
  });

  it('an unused process started ahead of time goes away without a file', () => {
    const prestarted = RecorderProcess.start();
    prestarted.discard();
    expect(prestarted.take()).toBeUndefined();
  });

  it('reports a file it cannot open through `opened` and every later write', async () => {
    const path = join(directory, 'bad-codec.avi');
    const recorder = startRecorder(path, { fps: 10, width: WIDTH, height: HEIGHT, fourcc: 'ZZZZ' });
    await recorder.write(grayFrame(0)); // taken while the file is still being opened
    await expect(recorder.opened).rejects.toThrow(RecorderError);
    await expect(recorder.opened).rejects.toThrow(`cannot record to ${path}: OpenCV could not open it for writing with codec ZZZZ`);
    await expect(recorder.write(grayFrame(1))).rejects.toThrow(/could not open it for writing with codec ZZZZ/);
    await recorder.close();
    expect(existsSync(path)).toBe(false);
  });
});
