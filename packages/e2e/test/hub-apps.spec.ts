import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { RawImage } from '@camstream/media';
import { loadOpenCV } from '@camstream/opencv';
import { fitPicture, mosaicLayout, type CameraFigures } from '@camstream/receiver';
import { parsePrometheusText, readFrameNumber, startApp, startXvfb, type AppProcess } from '@camstream/testkit';
import { startFakeSender, type FakeSender } from './fake-sender';

// The receiver as a hub of three TCP cameras, as a person runs it: three senders as HOST:PORT
// arguments, a real X server (Xvfb) for the mosaic window, a recording per camera, the browser
// server's /stats.json and /metrics. The cameras are the testkit's fake cameras, whose frames carry
// their number: each camera counts in its own range, so every tile, file and snapshot says which
// camera and which frame it shows.

const WIDTH = 160;
const HEIGHT = 120;
const FPS = 15;
const STARTS = [10_000, 20_000, 30_000];
const MOSAIC = { width: 1280, height: 720 };

const hasXvfb = (() => {
  try {
    execFileSync('which', ['Xvfb', 'xdotool', 'xwd'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** The camera a frame number belongs to (index into STARTS), or -1. */
function cameraOf(frameNumber: number | null): number {
  if (frameNumber === null) return -1;
  return STARTS.findIndex((start) => frameNumber >= start && frameNumber < start + 10_000);
}

function crop(shot: RawImage, rect: { x: number; y: number; width: number; height: number }): RawImage {
  const data = Buffer.alloc(rect.width * rect.height * 3);
  for (let y = 0; y < rect.height; y++) {
    const from = ((rect.y + y) * shot.width + rect.x) * 3;
    shot.data.copy(data, y * rect.width * 3, from, from + rect.width * 3);
  }
  return { width: rect.width, height: rect.height, channels: 3, data };
}

/** Where the mosaic window is on the screen (xdotool; Xvfb has no window manager to move it). */
function windowOrigin(display: string): { x: number; y: number } {
  const out = execFileSync('xdotool', ['search', '--sync', '--name', 'camstream mosaic', 'getwindowgeometry', '--shell'], { env: { ...process.env, DISPLAY: display } }).toString();
  return { x: Number(/X=(\d+)/.exec(out)![1]), y: Number(/Y=(\d+)/.exec(out)![1]) };
}

interface TileView {
  number: number | null;
  /** The red border a stopped camera's tile gets. */
  stopped: boolean;
}

/** What each tile of the mosaic shows on the screen now. */
function readTiles(shot: RawImage, origin: { x: number; y: number }, count: number): TileView[] {
  return mosaicLayout(count, MOSAIC.width, MOSAIC.height).map(({ cell, pictureArea }) => {
    const picture = fitPicture(WIDTH, HEIGHT, pictureArea);
    const number = readFrameNumber(crop(shot, { ...picture, x: origin.x + picture.x, y: origin.y + picture.y }));
    // The border runs along the cell's edge, in the margin round the picture.
    let red = 0;
    const y = origin.y + cell.y + 1;
    for (let x = origin.x + cell.x + 10; x < origin.x + cell.x + cell.width - 10; x++) {
      const o = (y * shot.width + x) * 3;
      if (shot.data[o + 2]! > 150 && shot.data[o]! < 60 && shot.data[o + 1]! < 60) red++;
    }
    return { number, stopped: red > (cell.width - 20) * 0.9 };
  });
}

/** The newest interval figures of each camera the receiver printed (--stats-json). */
function latestFigures(receiver: AppProcess): Map<string, CameraFigures> {
  const figures = new Map<string, CameraFigures>();
  for (const line of receiver.stdoutLines) {
    if (!line.startsWith('{')) continue;
    const parsed = JSON.parse(line) as CameraFigures & { kind: string };
    if (parsed.kind === 'interval') figures.set(parsed.camera, parsed);
  }
  return figures;
}

async function until<T>(probe: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

(hasXvfb ? it : it.skip)(
  'three TCP cameras into one hub: a mosaic tile per camera with its own frames, STOPPED when one stops, a recording per camera, /metrics that matches the stats',
  async () => {
    const workDir = mkdtempSync(path.join(tmpdir(), 'camstream-hub-'));
    const senders: FakeSender[] = [];
    try {
      await using xvfb = await startXvfb({ width: 1280, height: 800 });
      for (const startAt of STARTS) senders.push(await startFakeSender({ width: WIDTH, height: HEIGHT, fps: FPS, startAt }));
      const names = senders.map((sender) => `127.0.0.1:${sender.port}`);
      const record = path.join(workDir, 'out.avi');
      await using receiver = startApp('receiver', [...names, '--display', 'on', '--record', record, '--http', '0', '--stats-json'], { env: { DISPLAY: xvfb.display } });
      const url = /browser viewer at (http:\/\/\S+)/.exec(await receiver.waitForLine(/browser viewer at/, { stream: 'stderr', timeoutMs: 30_000 }))![1]!;
      await until(() => {
        const figures = latestFigures(receiver);
        return names.every((name) => (figures.get(name)?.shown ?? 0) >= 20) ? true : undefined;
      }, 'every camera to show 20 frames');

      // Every tile shows its own camera's frames, in the order the cameras were given.
      const origin = windowOrigin(xvfb.display);
      const live = await until(async () => {
        const tiles = readTiles(await xvfb.screenshot(), origin, 3);
        return tiles.every((tile) => tile.number !== null) ? tiles : undefined;
      }, 'three tiles with readable frame numbers');
      expect(live.map((tile) => cameraOf(tile.number))).toEqual([0, 1, 2]);
      expect(live.map((tile) => tile.stopped)).toEqual([false, false, false]);

      // The second camera stops: the receiver says so, and its tile keeps its last picture, STOPPED.
      await senders[1]!.stop();
      await receiver.waitForLine(new RegExp(`camera ${names[1]}: STOPPED: no frame for`), { stream: 'stderr' });
      const stoppedTiles = await until(async () => {
        const tiles = readTiles(await xvfb.screenshot(), origin, 3);
        return tiles[1]!.stopped && tiles.every((tile) => tile.number !== null) ? tiles : undefined;
      }, 'the stopped camera\'s tile marked STOPPED');
      expect(stoppedTiles.map((tile) => tile.stopped)).toEqual([false, true, false]);
      expect(stoppedTiles.map((tile) => cameraOf(tile.number))).toEqual([0, 1, 2]);
      // Its last picture is the last frame the receiver got from it, as its snapshot has it.
      const snapshot = await fetch(`${url}snapshot.jpg?camera=${encodeURIComponent(names[1]!)}`);
      const codec = new (await import('@camstream/opencv')).OpenCVCodec();
      const lastFrame = readFrameNumber(await codec.decode(Buffer.from(await snapshot.arrayBuffer()), 'jpeg', { width: WIDTH, height: HEIGHT, channels: 3 }));
      expect(stoppedTiles[1]!.number).toBe(lastFrame);

      // The stats say it too, per camera, and /metrics counts the same.
      const stopped = await until(async () => {
        const json = (await (await fetch(`${url}stats.json`)).json()) as { cameras: Array<{ camera: string; stats: CameraFigures | null }> };
        const entry = json.cameras.find((each) => each.camera === names[1]);
        return entry?.stats?.state === 'stopped' ? json : undefined;
      }, '/stats.json to say the camera stopped');
      expect(stopped.cameras.map((entry) => entry.camera)).toEqual(names);
      const statsOfStopped = stopped.cameras[1]!.stats!;
      const metricsResponse = await fetch(`${url}metrics`);
      expect(metricsResponse.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      const families = await parsePrometheusText(await metricsResponse.text());
      const family = (name: string) => families.find((each) => each.name === name);
      const sample = (name: string, camera: string) => families.flatMap((each) => each.samples).find((s) => s.name === name && s.labels['camera'] === camera)?.value;
      for (const [name, type] of [
        ['camstream_receiver_frames', 'counter'],
        ['camstream_receiver_frames_shown', 'counter'],
        ['camstream_receiver_sender_dropped', 'counter'],
        ['camstream_receiver_lost_in_transport', 'counter'],
        ['camstream_receiver_gaps', 'counter'],
        ['camstream_receiver_corrupt', 'counter'],
        ['camstream_receiver_latency_seconds', 'histogram'],
        ['camstream_receiver_fps', 'gauge'],
        ['camstream_receiver_camera_up', 'gauge'],
        ['process_cpu_seconds', 'counter'],
        ['process_resident_memory_bytes', 'gauge'],
      ] as const) {
        expect({ name, type: family(name)?.type }).toEqual({ name, type });
      }
      for (const each of families.filter((f) => f.name.startsWith('camstream_receiver_'))) {
        expect(new Set(each.samples.map((s) => s.labels['camera']))).toEqual(new Set(names));
      }
      expect(sample('camstream_receiver_frames_total', names[1]!)).toBe(statsOfStopped.frames);
      expect(sample('camstream_receiver_frames_shown_total', names[1]!)).toBe(statsOfStopped.shown);
      expect(sample('camstream_receiver_gaps_total', names[1]!)).toBe(statsOfStopped.gaps);
      expect(sample('camstream_receiver_corrupt_total', names[1]!)).toBe(statsOfStopped.corrupt);
      expect(sample('camstream_receiver_camera_up', names[1]!)).toBe(0);
      expect(sample('camstream_receiver_camera_up', names[0]!)).toBe(1);
      const latency = family('camstream_receiver_latency_seconds')!.samples.filter((s) => s.labels['camera'] === names[1]);
      const buckets = latency.filter((s) => s.name.endsWith('_bucket'));
      expect(buckets.map((s) => s.value)).toEqual([...buckets.map((s) => s.value)].sort((a, b) => a - b));
      expect(buckets.at(-1)).toMatchObject({ labels: { le: '+Inf' } });
      expect(buckets.at(-1)!.value).toBe(latency.find((s) => s.name.endsWith('_count'))!.value);
      expect(latency.find((s) => s.name.endsWith('_count'))!.value).toBeGreaterThanOrEqual(statsOfStopped.shown);

      receiver.signal('SIGINT');
      expect(await receiver.waitForExit(30_000)).toEqual({ code: 0, signal: null });
      const summaries = receiver.stdoutLines.filter((line) => line.includes('"summary"')).map((line) => JSON.parse(line) as CameraFigures);
      expect(summaries.map((s) => [s.camera, s.gaps, s.corrupt])).toEqual(names.map((name) => [name, 0, 0]));
      expect(summaries[1]!.state).toBe('stopped');

      // One file per camera, each with its own camera's frames in order, the stopped one ending on its last picture.
      const cv = loadOpenCV();
      names.forEach((name, i) => {
        const file = path.join(workDir, `out-${name.replace(':', '-')}.avi`);
        const written = Number(new RegExp(`camera ${name}: recorded (\\d+) frames to ${file.replace(/[.]/g, '\\.')}`).exec(receiver.stderrLines.join('\n'))?.[1]);
        const capture = new cv.VideoCapture(file);
        const numbers: number[] = [];
        try {
          for (let mat = capture.read(); !mat.empty; mat = capture.read()) numbers.push(readFrameNumber({ width: mat.cols, height: mat.rows, channels: 3, data: mat.getData() }) ?? -1);
        } finally {
          capture.release();
        }
        expect(numbers.length).toBe(written);
        expect(numbers.length).toBeGreaterThanOrEqual(20);
        expect(numbers.every((n) => cameraOf(n) === i)).toBe(true);
        expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
        if (i === 1) expect(numbers.at(-1)).toBe(lastFrame);
      });
    } finally {
      await Promise.all(senders.map((sender) => sender.stop()));
      rmSync(workDir, { recursive: true, force: true });
    }
  },
  120_000,
);
