import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadOpenCV } from '@camstream/opencv';
import { freePort, sendKey, startApp, startProcess, startXvfb } from '@camstream/testkit';
import { closestFrame, E2E_FIXTURES, findOnScreen, hasXvfb, PYTHON, startSeedStreamer, synthClip } from './tutorial-peers';

// The tutorial's own streamer (seed_streamer.py: pickle.dumps + struct.pack("Q"), its synthetic
// frames) watched by camstream-receiver --wire tutorial: headless with stats and a recording
// checked frame by frame against synth.py's deterministic frames, and in a window under Xvfb.
// And a hostile streamer whose pickle would run a command: refused, and nothing runs.

const headless = { DISPLAY: undefined, WAYLAND_DISPLAY: undefined };
let workDir: string;
beforeAll(() => {
  workDir = mkdtempSync(path.join(tmpdir(), 'camstream-tutorial-rx-'));
});
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

interface StatsLine {
  kind: 'interval' | 'summary';
  frames: number;
  shown: number;
  latencyMs: unknown;
  senderDropped: unknown;
  gaps: unknown;
  corrupt: number;
  notKnown?: Record<string, string>;
}

describe.each([
  [320, 240],
  [640, 480],
])("the tutorial's streamer at %dx%d", (width, height) => {
  it('watched headless by camstream-receiver --wire tutorial: stats say what the wire cannot tell, the recording holds its frames', async () => {
    const dir = mkdtempSync(path.join(workDir, `${width}x${height}-`));
    const clip = synthClip(dir, width, height);
    const port = await freePort();
    const frames = 90;
    const file = path.join(dir, 'tutorial.avi');
    await using streamer = await startSeedStreamer(clip, port);
    await using receiver = startApp(
      'receiver',
      ['--wire', 'tutorial', `127.0.0.1:${port}`, '--display', 'off', '--stats-json', '--frames', String(frames), '--record', file, '--no-reconnect'],
      { env: headless },
    );
    expect(await receiver.waitForExit(60_000)).toEqual({ code: 0, signal: null });
    // The tutorial's streamer serves one client and exits when it hangs up.
    expect((await streamer.waitForExit(10_000)).code).toBe(0);

    const stderr = receiver.stderrLines.join('\n');
    expect(stderr).toMatch(new RegExp(`first frame from the tutorial streamer at 127\\.0\\.0\\.1:${port}: ${width}x${height}, [\\d.]+ s after connecting`));
    const lines = receiver.stdoutLines.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as StatsLine);
    const summary = lines.find((line) => line.kind === 'summary')!;
    expect(summary).toMatchObject({ frames, corrupt: 0, latencyMs: null, senderDropped: null, gaps: null });
    expect(summary.notKnown).toEqual({
      latencyMs: 'the tutorial wire carries no capture time',
      senderDropped: 'the tutorial wire declares no drops',
      gaps: 'the tutorial wire carries no sequence numbers',
    });
    for (const line of lines) expect(line).toMatchObject({ latencyMs: null, senderDropped: null, gaps: null });

    // Every recorded frame is one of the streamer's.
    const [, written] = /recorded (\d+) frames to /.exec(stderr)!.map(Number);
    expect(written).toBeGreaterThan(0);
    const cv = loadOpenCV();
    const capture = new cv.VideoCapture(file);
    const indices: number[] = [];
    let worst = 0;
    let closestOther = Infinity;
    try {
      expect([capture.get(cv.CAP_PROP_FRAME_WIDTH), capture.get(cv.CAP_PROP_FRAME_HEIGHT)]).toEqual([width, height]);
      for (let mat = capture.read(); !mat.empty; mat = capture.read()) {
        const match = closestFrame({ width, height, channels: 3, data: mat.getData() }, clip);
        // Motion JPEG changes each pixel a little; another frame of the clip differs where its shapes moved.
        worst = Math.max(worst, match.unlikeness);
        closestOther = Math.min(closestOther, match.runnerUp);
        indices.push(match.index);
      }
    } finally {
      capture.release();
    }
    expect(indices).toHaveLength(written!);
    expect(worst).toBeLessThan(0.002);
    expect(closestOther).toBeGreaterThan(0.01);
    // (Which of them: the streamer sends far faster than a recorder writes, which keeps the newest.)
  });
});

(hasXvfb ? it : it.skip)("shows the tutorial's frames in a window, pixel for pixel, and q closes it", async () => {
  const clip = synthClip(mkdtempSync(path.join(workDir, 'window-')), 320, 240);
  const port = await freePort();
  const sent = 45;
  await using xvfb = await startXvfb();
  await using streamer = await startSeedStreamer(clip, port, ['--max-frames', String(sent)]);
  await using receiver = startApp('receiver', ['--wire', 'tutorial', `127.0.0.1:${port}`, '--display', 'on', '--quiet'], { env: { DISPLAY: xvfb.display } });
  // The streamer sends its frames and exits; the receiver keeps the window and waits for it to come back.
  await receiver.waitForLine(new RegExp(`the sender said bye: the tutorial streamer at 127\\.0\\.0\\.1:${port} ended its stream after ${sent} frames`), { stream: 'stderr', timeoutMs: 30_000 });
  expect((await streamer.waitForExit()).code).toBe(0);
  // The last frame sent is the clip's frame 44 % 30: exactly those pixels are on the screen.
  const last = clip.frames[(sent - 1) % clip.frames.length]!;
  let found = findOnScreen(await xvfb.screenshot(), last);
  const deadline = Date.now() + 10_000;
  while (!found && Date.now() < deadline) found = findOnScreen(await xvfb.screenshot(), last);
  expect(found).not.toBeNull();
  await sendKey(xvfb.display, 'camstream', 'q');
  expect(await receiver.waitForExit(15_000)).toEqual({ code: 0, signal: null });
  expect(receiver.stderrLines.join('\n')).toMatch(/window closed/);
});

it('refuses a "streamer" whose pickle would run a command: names the global, runs nothing, exits 1', async () => {
  const dir = mkdtempSync(path.join(workDir, 'hostile-'));
  const marker = path.join(dir, 'pwned');
  const port = await freePort();
  await using hostile = startProcess(PYTHON, [path.join(E2E_FIXTURES, 'hostile_streamer.py'), String(port), marker], { name: 'hostile_streamer.py' });
  await hostile.waitForLine(/^LISTENING AT:/, { stream: 'stdout' });
  await using receiver = startApp('receiver', ['--wire', 'tutorial', `127.0.0.1:${port}`, '--display', 'off', '--stats-json'], { env: headless });
  expect(await receiver.waitForExit(30_000)).toEqual({ code: 1, signal: null });
  expect(receiver.stderrLines.join('\n')).toMatch(
    new RegExp(
      `camstream-receiver: refused frame 1 of this connection from the tutorial streamer at 127\\.0\\.0\\.1:${port} \\(nothing in it was run\\): pickle opcode 0x93 STACK_GLOBAL at byte \\d+ on posix\\.system is not allowed: only numpy array pickles are accepted \\(ERR_NOT_ALLOWED\\)`,
    ),
  );
  // A refusal the same streamer would repeat: no second attempt.
  expect(receiver.stderrLines.join('\n')).not.toMatch(/reconnecting/);
  const summary = JSON.parse(receiver.stdoutLines.find((line) => line.includes('"summary"'))!) as StatsLine;
  expect(summary).toMatchObject({ frames: 0, corrupt: 1 });
  await hostile.waitForExit();
  expect(existsSync(marker)).toBe(false);
});
