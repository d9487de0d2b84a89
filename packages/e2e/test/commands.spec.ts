import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadOpenCV, openRecorder } from '@camstream/opencv';
import { FakeCamera, freePort, listenOnFreePort, startApp, type AppProcess } from '@camstream/testkit';

// The real commands as a person runs them: separate processes, real TCP, no display.
const headless = { DISPLAY: undefined, WAYLAND_DISPLAY: undefined };

async function listeningPort(sender: AppProcess): Promise<number> {
  const line = await sender.waitForLine(/^LISTENING AT: /, { stream: 'stdout' });
  return Number(/:(\d+)$/.exec(line)![1]);
}

function summaryOf(receiver: AppProcess): Record<string, unknown> {
  const line = receiver.stdoutLines.findLast((l) => l.includes('"kind":"summary"'));
  if (!line) throw new Error(`no summary line in:\n${receiver.stdoutLines.join('\n')}`);
  return JSON.parse(line) as Record<string, unknown>;
}

let workDir: string;
beforeAll(() => {
  workDir = mkdtempSync(path.join(tmpdir(), 'camstream-e2e-'));
});
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

// Each serve target type-checks its app first (its build). After a change to the sources both are
// cold tsc runs, one after the other: 38 s for this test at load 5 on 2 cores, and over 60 s on a
// fresh checkout. The waits below allow 60 s each; the file's 60 s test timeout did not.
it('nx run sender:serve and nx run receiver:serve stream the test pattern', async () => {
  const port = await freePort();
  await using sender = startApp('sender', ['--source', 'test', '--size', '320x240', '--fps', '30', '--port', String(port)], { viaNx: true, env: headless });
  await sender.waitForLine(/^LISTENING AT: /, { stream: 'stdout', timeoutMs: 60_000 });
  await using receiver = startApp('receiver', ['--port', String(port), '--frames', '30', '--display', 'auto', '--stats-json'], { viaNx: true, env: headless });
  const exit = await receiver.waitForExit(60_000);
  expect(exit.code).toBe(0);
  expect(receiver.stderrLines.join('\n')).toMatch(/no display available/);
  expect(summaryOf(receiver)).toMatchObject({ frames: 30, gaps: 0, corrupt: 0 });
  // OpenCV's loader chatter must not leak into the apps' output.
  expect([...sender.stdoutLines, ...sender.stderrLines, ...receiver.stdoutLines].join('\n')).not.toMatch(/Info:/);
}, 150_000);

it('SIGTERM makes the sender say bye to its receivers and exit 0', async () => {
  await using sender = startApp('sender', ['--source', 'test', '--size', '320x240', '--port', '0', '--codec', 'raw'], { env: headless });
  const port = await listeningPort(sender);
  await using receiver = startApp('receiver', [`127.0.0.1:${port}`, '--display', 'off', '--no-reconnect', '--stats-json'], { env: headless });
  await receiver.waitForLine(/"kind":"interval".*"fps":[1-9]/, { stream: 'stdout' });
  sender.signal('SIGTERM');
  expect(await sender.waitForExit(10_000)).toEqual({ code: 0, signal: null });
  expect(await receiver.waitForExit(10_000)).toEqual({ code: 0, signal: null });
  expect(receiver.stderrLines.join('\n')).toMatch(/the sender said bye: sender shutting down/);
  expect(summaryOf(receiver)).toMatchObject({ gaps: 0, corrupt: 0 });
});

it('Ctrl-C on a recording receiver (SIGINT to its process group, as a terminal sends it) finishes the file', async () => {
  await using sender = startApp('sender', ['--source', 'test', '--size', '320x240', '--port', '0'], { env: headless });
  const port = await listeningPort(sender);
  const file = path.join(workDir, 'ctrl-c.avi');
  await using receiver = startApp('receiver', [`127.0.0.1:${port}`, '--display', 'off', '--no-reconnect', '--stats-json', '--record', file], { env: headless });
  await receiver.waitForLine(/"kind":"interval".*"frames":[1-9]/, { stream: 'stdout' });
  // The recorder's child process is in the receiver's group: the signal reaches it too.
  receiver.signal('SIGINT');
  expect(await receiver.waitForExit(20_000)).toEqual({ code: 0, signal: null });
  const written = Number(/recorded (\d+) frames to /.exec(receiver.stderrLines.join('\n'))?.[1]);
  expect(written).toBeGreaterThan(0);
  const cv = loadOpenCV();
  const capture = new cv.VideoCapture(file);
  try {
    // A finished AVI has its index: the frame count is known before reading, and every frame reads.
    expect(capture.get(cv.CAP_PROP_FRAME_COUNT)).toBe(written);
    let read = 0;
    while (!capture.read().empty) read++;
    expect(read).toBe(written);
  } finally {
    capture.release();
  }
});

it('a video file plays to the first receiver, then ends the stream cleanly', async () => {
  const file = path.join(workDir, 'clip.avi');
  const camera = new FakeCamera({ width: 320, height: 240, fps: 0, frames: 45 });
  const recorder = await openRecorder(file, { fps: 30, width: 320, height: 240 });
  for (let f = await camera.read(); f; f = await camera.read()) await recorder.write(f.image);
  await recorder.close();

  await using sender = startApp('sender', ['--source', file, '--port', '0', '--codec', 'jpeg'], { env: headless });
  const port = await listeningPort(sender);
  await sender.waitForLine(/waiting for a receiver/);
  await using receiver = startApp('receiver', ['--port', String(port), '--display', 'off', '--no-reconnect', '--stats-json', '--quiet'], { env: headless });
  expect(await receiver.waitForExit(30_000)).toEqual({ code: 0, signal: null });
  expect(await sender.waitForExit(10_000)).toEqual({ code: 0, signal: null });
  expect(receiver.stderrLines.join('\n')).toMatch(/the sender said bye: end of stream/);
  expect(summaryOf(receiver)).toMatchObject({ frames: 45, gaps: 0, corrupt: 0 });
  expect(sender.stderrLines.join('\n')).toMatch(/320x240 @ 30 fps/);
});

it('--help answers from the bundle alone: no OpenCV, no libjpeg-turbo, no network or crypto code', async () => {
  for (const app of ['sender', 'receiver'] as const) {
    // NODE_DEBUG=module lists every require on stderr: builtins, and the addons left out of the bundle.
    await using help = startApp(app, ['--help'], { env: { ...headless, NODE_DEBUG: 'module' } });
    expect((await help.waitForExit(20_000)).code).toBe(0);
    expect(help.stdoutLines[0]).toMatch(new RegExp(`^Usage: camstream-${app} `));
    const requires = help.stderrLines.filter((line) => line.includes('Module._load REQUEST')).join('\n');
    expect(requires).toMatch(new RegExp(`dist/camstream-${app}\\.js`));
    expect(requires).not.toMatch(/opencv|jpeg-turbo|node:(net|tls|crypto|http|child_process)\b/);
  }
});

describe('clear errors, non-zero exit, nothing left running', () => {
  it('names a bad option', async () => {
    await using sender = startApp('sender', ['--codec', 'h265'], { env: headless });
    expect((await sender.waitForExit(20_000)).code).toBe(2);
    expect(sender.stderrLines.join('\n')).toMatch(/--codec "h265"/);
  });

  it('says the port is in use', async () => {
    const blocker = net.createServer();
    const port = await listenOnFreePort(blocker);
    try {
      await using sender = startApp('sender', ['--source', 'test', '--port', String(port)], { env: headless });
      expect((await sender.waitForExit(20_000)).code).toBe(1);
      expect(sender.stderrLines.join('\n')).toMatch(new RegExp(`port ${port} on 127.0.0.1 is already in use`));
    } finally {
      blocker.close();
    }
  });

  it('says the camera or the file is not there', async () => {
    await using camera = startApp('sender', ['--source', '0', '--port', '0'], { env: headless });
    expect((await camera.waitForExit(20_000)).code).toBe(1);
    expect(camera.stderrLines.join('\n')).toMatch(/camera 0/);
    await using file = startApp('sender', ['--source', '/no/such/clip.avi', '--port', '0'], { env: headless });
    expect((await file.waitForExit(20_000)).code).toBe(1);
    expect(file.stderrLines.join('\n')).toMatch(/\/no\/such\/clip\.avi/);
  });

  it('a receiver without reconnect says nobody is there; --display on without a display says so', async () => {
    const port = await freePort();
    await using receiver = startApp('receiver', ['--port', String(port), '--no-reconnect', '--display', 'off'], { env: headless });
    expect((await receiver.waitForExit(20_000)).code).toBe(1);
    expect(receiver.stderrLines.join('\n')).toMatch(new RegExp(`no sender at 127.0.0.1:${port} \\(connection refused\\)`));
    await using windowed = startApp('receiver', ['--port', String(port), '--display', 'on'], { env: headless });
    expect((await windowed.waitForExit(20_000)).code).toBe(1);
    expect(windowed.stderrLines.join('\n')).toMatch(/--display on, but no display is available/);
  });
});
