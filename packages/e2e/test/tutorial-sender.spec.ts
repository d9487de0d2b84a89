import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startApp, startProcess, type AppProcess } from '@camstream/testkit';
import { E2E_FIXTURES, PEERS, PYTHON, synthClip, type SynthClip } from './tutorial-peers';

// camstream-sender --wire tutorial serving the tutorial's own receiver (seed_receiver.py: its
// 4 KiB recv loop and pickle.loads) at two sizes, and several of the tutorial's receivers at once
// with one that reads nothing. The sender plays synth.py's deterministic frames from a lossless
// file, so every frame a Python receiver unpickles is checked by its MD5 against them.

let workDir: string;
beforeAll(() => {
  workDir = mkdtempSync(path.join(tmpdir(), 'camstream-tutorial-tx-'));
});
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

/** The clip as a video file OpenCV reads back bit for bit (uncompressed BGR in AVI). */
function losslessVideo(clip: SynthClip): string {
  const { width, height } = clip.frames[0]!;
  const file = clip.file.replace(/\.bgr$/, '.avi');
  execFileSync('ffmpeg', ['-loglevel', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'bgr24', '-s', `${width}x${height}`, '-r', '30', '-i', clip.file, '-c:v', 'rawvideo', '-pix_fmt', 'bgr24', file]);
  return file;
}

async function startTutorialSender(video: string, extra: string[] = []): Promise<{ sender: AppProcess; port: number }> {
  const sender = startApp('sender', ['--wire', 'tutorial', '--source', video, '--loop', '--port', '0', '--stats-json', ...extra]);
  const listening = await sender.waitForLine(/^LISTENING AT: /, { stream: 'stdout', timeoutMs: 30_000 });
  return { sender, port: Number(/:(\d+)$/.exec(listening)![1]) };
}

/** frame_digests.py: the tutorial's receive loop, printing each frame's shape, dtype and MD5. */
function startDigests(port: number, frames: number): AppProcess {
  return startProcess(PYTHON, [path.join(E2E_FIXTURES, 'frame_digests.py'), String(port), String(frames)], { name: 'frame_digests.py' });
}

/** Every frame the tutorial's receiver unpickled is one of the clip's, in the clip's order (some may be skipped). */
function expectClipFrames(lines: readonly string[], clip: SynthClip, count: number): void {
  const { width, height } = clip.frames[0]!;
  expect(lines).toHaveLength(count);
  const indices = lines.map((line) => {
    const [shape, dtype, digest] = line.split(' ');
    expect({ shape, dtype }).toEqual({ shape: `${height}x${width}x3`, dtype: 'uint8' });
    const index = clip.digests.indexOf(digest!);
    expect({ line, known: index >= 0 }).toEqual({ line, known: true });
    return index;
  });
  // The file plays in order and loops: each frame is a later one of the clip than the one before, modulo its length.
  for (let i = 1; i < indices.length; i++) expect((indices[i]! - indices[i - 1]! + clip.frames.length) % clip.frames.length).toBeGreaterThan(0);
  expect(new Set(indices).size).toBeGreaterThan(Math.min(count, clip.frames.length) / 3);
}

describe.each([
  [320, 240],
  [640, 480],
])('camstream-sender --wire tutorial at %dx%d', (width, height) => {
  it("serves the tutorial's receiver script: its shape check passes, and every frame it unpickles is the file's", async () => {
    const dir = mkdtempSync(path.join(workDir, `${width}x${height}-`));
    const clip = synthClip(dir, width, height);
    const { sender, port } = await startTutorialSender(losslessVideo(clip));
    await using _sender = sender;
    expect(sender.stderrLines.join('\n')).toMatch(/wire: the tutorial's/);
    // On loopback: no exposure warning.
    expect(sender.stderrLines.join('\n')).not.toMatch(/NO authentication/);

    await using seedReceiver = startProcess(
      PYTHON,
      [path.join(PEERS, 'seed_receiver.py'), '--port', String(port), '--expect', `${width}x${height}`, '--max-frames', '40'],
      { name: 'seed_receiver.py' },
    );
    expect(await seedReceiver.waitForExit(60_000)).toEqual({ code: 0, signal: null });
    const figures = JSON.parse(seedReceiver.stdoutLines.at(-1)!) as { frames: number; frame_bytes: number };
    // 40 frames after its one warm-up frame, each an 8-byte length and a pickle of W*H*3 bytes plus its few dozen bytes of head and tail.
    expect(figures.frames).toBe(40);
    expect(figures.frame_bytes - 8 - width * height * 3).toBeGreaterThan(0);
    expect(figures.frame_bytes - 8 - width * height * 3).toBeLessThan(200);

    await using digests = startDigests(port, 30);
    expect(await digests.waitForExit(60_000)).toEqual({ code: 0, signal: null });
    expectClipFrames(digests.stdoutLines, clip, 30);
    // A reader that stops with bytes unread closes with a reset, which the sender calls a connection error.
    await sender.waitForLine(/tutorial client #2 \(127\.0\.0\.1:\d+\) left( \(connection error\))?: \d+ frames sent, \d+ frames dropped/, { stream: 'stderr' });
  });
});

it("serves several of the tutorial's receivers at once: one that reads nothing drops frames (counted, logged), the others get the file's frames", async () => {
  const clip = synthClip(mkdtempSync(path.join(workDir, 'many-')), 320, 240);
  const { sender, port } = await startTutorialSender(losslessVideo(clip));
  await using _sender = sender;
  // A client that connects and never reads: its socket's buffers fill, then its slot drops frames.
  const stalled = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => stalled.once('connect', resolve).once('error', reject));
  stalled.pause();
  try {
    await using first = startDigests(port, 90);
    await using second = startDigests(port, 90);
    const stalledName = `127.0.0.1:${stalled.localPort}`;
    await sender.waitForLine(new RegExp(`^\\[sender\\] tutorial client #\\d+ \\(${stalledName.replace(/\./g, '\\.')}\\): \\d+ frames dropped in the last [\\d.]+ s, \\d+ in all`), {
      stream: 'stderr',
      timeoutMs: 60_000,
    });
    for (const reader of [first, second]) {
      expect(await reader.waitForExit(60_000)).toEqual({ code: 0, signal: null });
      expectClipFrames(reader.stdoutLines, clip, 90);
    }
    // The stats name the stalled client and its drops; nothing of the stream could tell it.
    const perViewer = sender.stdoutLines
      .filter((line) => line.startsWith('{'))
      .flatMap((line) => (JSON.parse(line) as { perViewer?: Array<{ name: string; wire?: string; dropped: number }> }).perViewer ?? []);
    const stalledFigures = perViewer.filter((viewer) => viewer.name === stalledName);
    expect(stalledFigures.length).toBeGreaterThan(0);
    expect(stalledFigures.at(-1)).toMatchObject({ wire: 'tutorial' });
    expect(stalledFigures.at(-1)!.dropped).toBeGreaterThan(0);
  } finally {
    stalled.destroy();
  }
});

it('warns that anyone can watch when the tutorial wire listens beyond loopback', async () => {
  await using sender = startApp('sender', ['--wire', 'tutorial', '--source', 'test', '--size', '160x120', '--host', '0.0.0.0', '--port', '0']);
  await sender.waitForLine(/^LISTENING AT: /, { stream: 'stdout', timeoutMs: 30_000 });
  expect(sender.stderrLines.join('\n')).toMatch(/WARNING: listening on 0\.0\.0\.0 with the tutorial's wire, which has NO authentication/);
});
