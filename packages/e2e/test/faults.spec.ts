import type { Encoding, StreamDescription } from '@camstream/protocol';
import type { StreamServer } from '@camstream/sender';
import { ChaosProxy, FakeCamera, freePort, startApp, type AppProcess } from '@camstream/testkit';
import { groupAlive, pump, senderHello, startReceiver, startServerWith, until, type TestReceiver } from './harness';

// Faults on the way: a misbehaving network between a real receiver and a real sender (the
// testkit's ChaosProxy), and the real processes killed with SIGKILL and started again.

const headless = { DISPLAY: undefined, WAYLAND_DISPLAY: undefined };

/** Stops a receiver and checks it ends as asked, with nothing left in flight. */
async function stopReceiver(receiver: TestReceiver): Promise<void> {
  receiver.stop();
  expect(await receiver.result).toEqual({ outcome: 'stopped' });
}

describe('through a ChaosProxy', () => {
  const WIDTH = 160;
  const HEIGHT = 120;
  /** The hello this sender sends: what startServerWith announces. */
  const stream: StreamDescription = { width: WIDTH, height: HEIGHT, fps: 30, pixelFormat: 'bgr24', encoding: 'raw-bgr', source: 'fake camera' };
  const HELLO = senderHello(stream).length;
  /** A frame's JSON header is about 170 bytes; its raw payload 57600. */
  const PAYLOAD = WIDTH * HEIGHT * 3;

  let camera: FakeCamera;
  let server: StreamServer;
  let stopPump: AbortController;
  let pumping: Promise<unknown>;

  beforeAll(async () => {
    camera = new FakeCamera({ width: WIDTH, height: HEIGHT, fps: 30 });
    server = await startServerWith(camera, 'raw-bgr');
    stopPump = new AbortController();
    pumping = pump(server, camera, stopPump.signal);
  });

  afterAll(async () => {
    stopPump?.abort();
    await pumping;
    await server?.close('test over');
    await camera?.close();
  });

  // Byte offsets on the connection, from the real layout: the sender's hello (HELLO bytes), then
  // frames of 8 (N) + 4 (H) + ~170 (JSON header) + PAYLOAD bytes.
  describe.each<{ phase: string; cut: { upstream?: number; downstream?: number }; message: RegExp }>([
    { phase: 'in the receiver’s hello', cut: { upstream: 10 }, message: /the sender closed the connection before its hello|reset the connection/ },
    { phase: 'in the length prefix of the sender’s hello', cut: { downstream: 5 }, message: /the sender closed the connection in the middle of a message/ },
    { phase: 'in the JSON of the sender’s hello', cut: { downstream: 12 + 10 }, message: /the sender closed the connection in the middle of a message/ },
    { phase: 'right after the hello, between messages', cut: { downstream: HELLO }, message: /the sender closed the connection$/ },
    { phase: 'in the first frame’s length prefix', cut: { downstream: HELLO + 6 }, message: /the sender closed the connection in the middle of a message/ },
    { phase: 'in the first frame’s JSON header', cut: { downstream: HELLO + 12 + 40 }, message: /the sender closed the connection in the middle of a message/ },
    { phase: 'in the first frame’s payload', cut: { downstream: HELLO + 12 + 200 + PAYLOAD / 2 }, message: /the sender closed the connection in the middle of a message/ },
  ])('a connection cut $phase', ({ cut, message }) => {
    it('is reported; the receiver reconnects through the proxy and goes on with no gaps', async () => {
      await using proxy = await ChaosProxy.start({ target: { host: '127.0.0.1', port: server.port }, cutAfterBytes: cut });
      const receiver = startReceiver(proxy.port, { reconnect: true, name: 'cut' });
      try {
        // Every connection is cut at the same byte: see it happen twice.
        await until(() => receiver.log.filter((l) => message.test(l)).length >= 2, `two cuts to be reported as ${message}`);
        expect(proxy.connections).toBeGreaterThanOrEqual(2);
        expect(receiver.log.join('\n')).toMatch(/reconnecting in/);
        // The network heals: frames flow again on the next connection.
        proxy.cutAfterBytes = undefined;
        const before = receiver.stats.summary().frames;
        await until(() => receiver.stats.summary().frames >= before + 20, '20 frames after the network healed');
        expect(receiver.stats.summary()).toMatchObject({ gaps: 0, corrupt: 0 });
        expect(receiver.sink.numbers).toEqual([...receiver.sink.numbers].sort((a, b) => a - b));
      } finally {
        await stopReceiver(receiver);
      }
      await until(() => server.connectionCount === 0, 'the sender to let go of every cut connection');
    });
  });

  describe.each<{ name: string; chaos: { maxChunkBytes?: number; delayMs?: number } }>([
    { name: 'one-byte chunks both ways', chaos: { maxChunkBytes: 1 } },
    { name: 'a delay before every chunk of up to 4 KB', chaos: { maxChunkBytes: 4096, delayMs: 5 } },
  ])('$name', ({ chaos }) => {
    it('still deliver every frame of a JPEG stream, in order', async () => {
      const encoding: Encoding = 'jpeg';
      const frames = 30;
      const source = new FakeCamera({ width: WIDTH, height: HEIGHT, fps: 10, frames });
      const own = await startServerWith(source, encoding);
      try {
        await using proxy = await ChaosProxy.start({ target: { host: '127.0.0.1', port: own.port }, ...chaos });
        const receiver = startReceiver(proxy.port, { maxFrames: frames, name: 'chaos' });
        await until(() => own.viewerList.length === 1, 'the receiver to join through the proxy');
        expect(await pump(own, source)).toBe('source-ended');
        expect(await receiver.result).toEqual({ outcome: 'frames-reached' });
        expect(receiver.stats.summary()).toMatchObject({ frames, gaps: 0, senderDropped: 0, corrupt: 0 });
        expect(receiver.sink.numbers).toEqual([...receiver.sink.numbers].sort((a, b) => a - b));
        expect(receiver.sink.numbers.at(-1)).toBe(frames - 1);
        expect(receiver.sink.worstDifference).toBeLessThanOrEqual(6);
      } finally {
        await own.close('test over');
      }
    });
  });
});

describe('real processes killed with SIGKILL', () => {
  const lastInterval = (receiver: AppProcess): { frames: number; gaps: number; corrupt: number } | undefined => {
    const line = receiver.stdoutLines.findLast((l) => l.includes('"kind":"interval"'));
    return line ? (JSON.parse(line) as { frames: number; gaps: number; corrupt: number }) : undefined;
  };
  const summaryOf = (receiver: AppProcess): Record<string, unknown> => {
    const line = receiver.stdoutLines.findLast((l) => l.includes('"kind":"summary"'));
    if (!line) throw new Error(`no summary line in:\n${receiver.outputTail()}`);
    return JSON.parse(line) as Record<string, unknown>;
  };
  const framesOf = (receiver: AppProcess) => lastInterval(receiver)?.frames ?? 0;

  it('the sender is killed and restarted on the same port: the receiver resumes', async () => {
    const port = await freePort();
    const senderArgs = ['--source', 'test', '--size', '320x240', '--fps', '30', '--codec', 'jpeg', '--port', String(port), '--quiet'];
    const pids: number[] = [];
    {
      await using receiver = startApp('receiver', ['--port', String(port), '--display', 'off', '--stats-json', '--name', 'survivor'], { env: headless });
      pids.push(receiver.pid);
      {
        await using first = startApp('sender', senderArgs, { env: headless });
        pids.push(first.pid);
        await first.waitForLine(/^LISTENING AT: /, { stream: 'stdout', timeoutMs: 30_000 });
        await until(() => framesOf(receiver) >= 30, 'the receiver to get 30 frames from the first sender', 30_000);
        first.signal('SIGKILL');
        expect((await first.waitForExit(10_000)).signal).toBe('SIGKILL');
      }
      await receiver.waitForLine(/reconnecting in/, { stream: 'stderr', timeoutMs: 15_000 });
      const atKill = framesOf(receiver);

      await using second = startApp('sender', senderArgs, { env: headless });
      pids.push(second.pid);
      await second.waitForLine(/^LISTENING AT: /, { stream: 'stdout', timeoutMs: 30_000 });
      await until(() => framesOf(receiver) >= atKill + 30, 'the receiver’s frame count to rise again', 30_000);
      expect(receiver.exitedWith).toBeUndefined();

      receiver.signal('SIGTERM');
      expect(await receiver.waitForExit(10_000)).toEqual({ code: 0, signal: null });
      expect(summaryOf(receiver)).toMatchObject({ gaps: 0, corrupt: 0 });
      expect(receiver.stderrLines.filter((l) => /connected to 127\.0\.0\.1/.test(l)).length).toBeGreaterThanOrEqual(2);
    }
    for (const pid of pids) expect(groupAlive(pid)).toBe(false);
  });

  it('the receiver is killed and restarted: the sender keeps serving and the new one gets frames', async () => {
    const pids: number[] = [];
    {
      await using sender = startApp('sender', ['--source', 'test', '--size', '320x240', '--fps', '30', '--codec', 'jpeg', '--port', '0', '--quiet'], { env: headless });
      pids.push(sender.pid);
      const line = await sender.waitForLine(/^LISTENING AT: /, { stream: 'stdout', timeoutMs: 30_000 });
      const port = Number(/:(\d+)$/.exec(line)![1]);
      const receiverArgs = ['--port', String(port), '--display', 'off', '--stats-json'];
      {
        await using first = startApp('receiver', [...receiverArgs, '--name', 'doomed'], { env: headless });
        pids.push(first.pid);
        await until(() => framesOf(first) >= 30, 'the first receiver to get 30 frames', 30_000);
        first.signal('SIGKILL');
        expect((await first.waitForExit(10_000)).signal).toBe('SIGKILL');
      }
      await sender.waitForLine(/viewer #1 \(doomed\) left/, { stream: 'stderr', timeoutMs: 15_000 });
      expect(sender.exitedWith).toBeUndefined();

      await using second = startApp('receiver', [...receiverArgs, '--name', 'successor', '--frames', '60', '--no-reconnect'], { env: headless });
      pids.push(second.pid);
      expect(await second.waitForExit(30_000)).toEqual({ code: 0, signal: null });
      expect(summaryOf(second)).toMatchObject({ frames: 60, gaps: 0, corrupt: 0 });
      expect(sender.stderrLines.join('\n')).toMatch(/viewer #2 \(successor\) joined/);
      expect(sender.exitedWith).toBeUndefined();

      sender.signal('SIGTERM');
      expect(await sender.waitForExit(10_000)).toEqual({ code: 0, signal: null });
    }
    for (const pid of pids) expect(groupAlive(pid)).toBe(false);
  });
});
