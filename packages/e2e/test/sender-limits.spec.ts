import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  encodeMessage,
  MessageDecoder,
  newNonce,
  PROTOCOL_NAME,
  PROTOCOL_VERSION,
  receiverProof,
  type ErrorHeader,
  type Header,
  type StreamDescription,
} from '@camstream/protocol';
import { runSession, type SessionEnd, type SessionOptions } from '@camstream/receiver';
import type { StreamServerOptions } from '@camstream/sender';
import { FakeCamera, startApp, type AppProcess } from '@camstream/testkit';
import { FakeSender, garbage, pump, rawExchange, receiverHello, startServerWith, until } from './harness';

// The sender's limits under hostile load, over real loopback TCP: connections that never finish
// their handshake, headers nested deeper than any parser's stack, messages followed by garbage
// in the same write, and a capture loop with no pace of its own (--fps 0).

const SECRET = 's3cretvalue';
const headless = { DISPLAY: undefined, WAYLAND_DISPLAY: undefined };

async function startSender(extra: Partial<Omit<StreamServerOptions, 'broadcast'>> = {}) {
  const camera = new FakeCamera({ width: 64, height: 48, fps: 30 });
  const log: string[] = [];
  const server = await startServerWith(camera, 'jpeg', { maxViewers: 16, log: (line) => log.push(line), ...extra });
  const stop = new AbortController();
  const pumping = pump(server, camera, stop.signal);
  return {
    server,
    log,
    async [Symbol.asyncDispose]() {
      stop.abort();
      await pumping;
      await server.close('test over');
      await camera.close();
    },
  };
}

/** Connects once with runSession; resolves with how it ended once `wantFrames` frames came (or it ended). */
async function watch(port: number, options: Partial<SessionOptions> = {}, wantFrames = 10) {
  const abort = new AbortController();
  let frames = 0;
  const end: SessionEnd = await runSession(
    { host: '127.0.0.1', port, name: 'legitimate receiver', signal: abort.signal, ...options },
    {
      onStream: () => undefined,
      onFrame: () => {
        if (++frames >= wantFrames) abort.abort();
      },
    },
  );
  return { end, frames };
}

/**
 * Plain TCP connections that send nothing. With `reopen`, each one closed by the sender is opened
 * again at once, as an attacker would, until stop(). Counts the closes and the error codes sent.
 */
class IdleSockets {
  closed = 0;
  readonly codes = new Map<string, number>();
  private readonly open = new Set<net.Socket>();
  private stopped = false;

  private constructor(
    private readonly port: number,
    private readonly reopen: boolean,
  ) {}

  /** Resolves once all `count` sockets are connected. */
  static async open(port: number, count: number, options: { reopen?: boolean } = {}): Promise<IdleSockets> {
    const idle = new IdleSockets(port, options.reopen ?? false);
    await Promise.all(Array.from({ length: count }, () => idle.connect()));
    return idle;
  }

  get openCount(): number {
    return this.open.size;
  }

  private connect(): Promise<void> {
    return new Promise((resolve) => {
      const socket = net.connect(this.port, '127.0.0.1');
      const decoder = new MessageDecoder();
      this.open.add(socket);
      socket.on('error', () => undefined);
      socket.on('data', (chunk: Buffer) => {
        try {
          decoder.push(chunk, ({ header }) => {
            if (header.type === 'error') this.codes.set(header.code, (this.codes.get(header.code) ?? 0) + 1);
          });
        } catch {
          // only the error code matters here
        }
      });
      socket.on('connect', () => resolve());
      socket.on('close', () => {
        resolve();
        this.open.delete(socket);
        if (this.stopped) return;
        this.closed++;
        if (this.reopen) void this.connect();
      });
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const closing = [...this.open].map((socket) => new Promise((resolve) => socket.once('close', resolve)));
    for (const socket of this.open) socket.destroy();
    await Promise.all(closing);
  }
}

/** A line summing up refusals: "997 more refused or closed connections in the last 5.0 s, ...: 997 ERR_FULL". */
const SUMMARY = /^\d+ more refused or closed connections? in the last [\d.]+ s, too many to log one by one: \d+ ERR_FULL/;
/** The sender's log lines about single connections it refused. */
const refusalLines = (log: string[]) => log.filter((line) => /^refused /.test(line));

describe('connections still in their handshake', () => {
  it('100 idle sockets do not lock out an authenticated receiver: only finished handshakes take viewer slots', async () => {
    await using sender = await startSender({ secret: SECRET, maxPendingPerAddress: 32 });
    const idle = await IdleSockets.open(sender.server.port, 100);
    try {
      const { end, frames } = await watch(sender.server.port, { secret: SECRET });
      expect(end).toEqual({ kind: 'stopped' });
      expect(frames).toBe(10);
      // The oldest idle sockets from 127.0.0.1 made room for newer connections, with a reason.
      await until(() => idle.openCount <= 32, 'the sender to hold at most 32 unfinished handshakes from one address');
      expect(idle.closed).toBeGreaterThanOrEqual(100 - 32);
      expect(idle.codes.get('ERR_FULL')).toBeGreaterThanOrEqual(100 - 32);
    } finally {
      await idle.stop();
    }
  });

  it('an attacker reopening every closed socket does not keep a receiver out, and its refusals are summed up in the log', async () => {
    const started = performance.now();
    await using sender = await startSender({ secret: SECRET, refusalSummaryMs: 200 });
    const attacker = await IdleSockets.open(sender.server.port, 100, { reopen: true });
    try {
      const { end, frames } = await watch(sender.server.port, { secret: SECRET });
      expect(end).toEqual({ kind: 'stopped' });
      expect(frames).toBe(10);
      await until(() => attacker.closed >= 1000, 'the attacker to have had 1000 sockets closed');
      await until(() => sender.log.some((line) => SUMMARY.test(line)), 'a summary of the refusals');
    } finally {
      await attacker.stop();
    }
    // Not a line per refusal: the first 20, then one a second at most (RefusalLog), and summaries.
    const seconds = (performance.now() - started) / 1000;
    expect(refusalLines(sender.log).length).toBeLessThanOrEqual(20 + Math.ceil(seconds));
  });

  it('a receiver half-way through authentication is not pushed out by idle sockets opened after it', async () => {
    // A long deadline: this test is about room, not time.
    await using sender = await startSender({ secret: SECRET, maxPendingPerAddress: 8, handshakeTimeoutMs: 60_000 });
    const socket = net.connect(sender.server.port, '127.0.0.1');
    const decoder = new MessageDecoder();
    const received: Header[] = [];
    socket.on('data', (chunk: Buffer) => decoder.push(chunk, ({ header }) => void received.push(header)));
    socket.on('error', () => undefined);
    const receiverNonce = newNonce();
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(encodeMessage({ type: 'hello', protocol: PROTOCOL_NAME, version: PROTOCOL_VERSION, role: 'receiver', name: 'slow', nonce: receiverNonce }).head);
    await until(() => received.some((h) => h.type === 'challenge'), 'the challenge');
    const idle = await IdleSockets.open(sender.server.port, 40);
    try {
      await until(() => idle.closed >= 40 - 8, 'idle sockets to be closed to make room');
      const challenge = received.find((h): h is Extract<Header, { type: 'challenge' }> => h.type === 'challenge')!;
      socket.write(encodeMessage({ type: 'auth', mac: receiverProof(SECRET, challenge.nonce, receiverNonce) }).head);
      await until(() => received.some((h) => h.type === 'hello' || h.type === 'error'), 'the sender to answer the auth');
      expect(received.map((h) => h.type)).toEqual(expect.arrayContaining(['challenge', 'hello']));
      expect(received.filter((h) => h.type === 'error')).toEqual([]);
    } finally {
      socket.destroy();
      await idle.stop();
    }
  });

  it('when every viewer slot is taken, a receiver hears ERR_FULL only after authenticating', async () => {
    await using sender = await startSender({ secret: SECRET, maxViewers: 1 });
    const idle = await IdleSockets.open(sender.server.port, 5);
    const stopFirst = new AbortController();
    try {
      const first = watch(sender.server.port, { secret: SECRET, name: 'first', signal: stopFirst.signal }, Infinity);
      await until(() => sender.server.viewerList.length === 1, 'the first receiver to join');
      const second = await watch(sender.server.port, { secret: SECRET, name: 'second' });
      expect(second.end).toMatchObject({ kind: 'refused', code: 'ERR_FULL', reason: expect.stringMatching(/limit of 1 viewers/) });
      const wrongSecret = await watch(sender.server.port, { secret: 'not the secret', name: 'third' });
      expect(wrongSecret.end).toMatchObject({ kind: 'refused', code: 'ERR_AUTH' });
      stopFirst.abort();
      expect((await first).end).toEqual({ kind: 'stopped' });
    } finally {
      stopFirst.abort();
      await idle.stop();
    }
  });
});

describe('connections still in their TLS handshake', () => {
  let dir: string;
  let tlsFiles: { cert: Buffer; key: Buffer };

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'camstream-limits-'));
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
      '-keyout', path.join(dir, 'sender.key'), '-out', path.join(dir, 'sender.pem'),
    ], { stdio: 'ignore' });
    tlsFiles = { cert: readFileSync(path.join(dir, 'sender.pem')), key: readFileSync(path.join(dir, 'sender.key')) };
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('count against the same bound, and a TLS receiver gets in while 50 idle sockets are open', async () => {
    await using sender = await startSender({ tls: tlsFiles, secret: SECRET, maxPendingPerAddress: 16 });
    const idle = await IdleSockets.open(sender.server.port, 50);
    try {
      await until(() => idle.openCount <= 16, 'the sender to hold at most 16 unfinished handshakes from one address');
      const fingerprint256 = new X509Certificate(tlsFiles.cert).fingerprint256;
      const { end, frames } = await watch(sender.server.port, { secret: SECRET, tls: { fingerprint256 } });
      expect(end).toEqual({ kind: 'stopped' });
      expect(frames).toBe(10);
    } finally {
      await idle.stop();
    }
  });

  it('are closed by the handshake deadline', async () => {
    await using sender = await startSender({ tls: tlsFiles, handshakeTimeoutMs: 300 });
    const idle = await IdleSockets.open(sender.server.port, 3);
    try {
      await until(() => idle.closed === 3, 'the idle sockets to be closed');
      expect(sender.log.join('\n')).toMatch(/refused 127\.0\.0\.1:\d+: no TLS handshake within 300 ms/);
      await until(() => sender.server.connectionCount === 0, 'no connection left');
    } finally {
      await idle.stop();
    }
  });
});

/** A JSON array nested `depth` deep: JSON.parse reads it, anything recursive overflows on it. */
const nestedArray = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

/** A header given as JSON text with `field` set to the JSON text `value`. */
function headerText(header: object, field: string, value: string): Buffer {
  const json = JSON.stringify({ ...header, [field]: '__value__' }).replace('"__value__"', value);
  const body = Buffer.from(json);
  const prefix = Buffer.alloc(12);
  prefix.writeBigUInt64BE(BigInt(4 + body.length), 0);
  prefix.writeUInt32BE(body.length, 8);
  return Buffer.concat([prefix, body]);
}

const errorsIn = (messages: Header[]) => messages.filter((m): m is ErrorHeader => m.type === 'error');

describe('a header nested 5,000 deep', () => {
  it('the sender answers ERR_SCHEMA with a short reason, and keeps serving', async () => {
    await using sender = await startSender();
    const hello = { type: 'hello', protocol: PROTOCOL_NAME, version: PROTOCOL_VERSION, role: 'receiver' };
    const exchange = await rawExchange(sender.server.port, [headerText(hello, 'name', nestedArray(5000))]);
    expect(exchange.closedByPeer).toBe(true);
    const errors = errorsIn(exchange.messages);
    expect(errors.map((e) => e.code)).toEqual(['ERR_SCHEMA']);
    expect(errors[0]!.reason).toMatch(/^invalid "hello" header: name: /);
    expect(errors[0]!.reason.length).toBeLessThan(1000);
    expect(sender.log.join('\n')).toMatch(/refused 127\.0\.0\.1:\d+: invalid "hello" header: name: /);
    expect(Math.max(...sender.log.map((line) => line.length))).toBeLessThan(1000);
    expect((await watch(sender.server.port)).frames).toBe(10);
  });

  it('the receiver fails with ERR_SCHEMA, says so to the sender, with a short reason', async () => {
    const stream: StreamDescription = { width: 64, height: 48, fps: 30, pixelFormat: 'bgr24', encoding: 'jpeg' };
    const hello = { type: 'hello', protocol: PROTOCOL_NAME, version: PROTOCOL_VERSION, role: 'sender', stream };
    await using fake = await FakeSender.start(async (socket) => {
      await FakeSender.helloFrom(socket);
      socket.write(headerText(hello, 'name', nestedArray(5000)));
    });
    const { end } = await watch(fake.port);
    expect(end.kind).toBe('failed');
    const error = (end as { error: Error & { code?: string } }).error;
    expect(error.code).toBe('ERR_SCHEMA');
    expect(error.message).toMatch(/^invalid "hello" header: name: /);
    expect(error.message.length).toBeLessThan(1000);
    await until(() => fake.errorsReceived.length === 1, 'the receiver to send its error');
    expect(fake.errorsReceived[0]).toMatchObject({ code: 'ERR_SCHEMA', reason: error.message });
  });
});

describe('messages followed by garbage in the same write', () => {
  const ping = encodeMessage({ type: 'ping', time: 1 }).head;
  const bye = encodeMessage({ type: 'bye', reason: 'leaving' }).head;
  /** 4 KiB whose first 8 bytes, read as a length, are far over the limit. */
  const trailingGarbage = () => Buffer.concat([Buffer.alloc(8, 0xff), garbage(4088)]);

  it('a ping after the hello is answered ERR_UNEXPECTED about the ping; nothing after it is decoded', async () => {
    await using sender = await startSender();
    const exchange = await rawExchange(sender.server.port, [Buffer.concat([receiverHello('pinger'), ping, trailingGarbage()])]);
    expect(exchange.closedByPeer).toBe(true);
    expect(exchange.messages.map((m) => m.type)).toEqual(['hello', 'error']);
    expect(errorsIn(exchange.messages)[0]).toMatchObject({ code: 'ERR_UNEXPECTED', reason: "unexpected 'ping' message after the handshake" });
  });

  it('a bye after the hello closes the connection without an error; nothing after it is decoded', async () => {
    await using sender = await startSender();
    const exchange = await rawExchange(sender.server.port, [Buffer.concat([receiverHello('brief visitor'), bye, trailingGarbage()])]);
    expect(exchange.closedByPeer).toBe(true);
    expect(exchange.messages.map((m) => m.type)).toEqual(['hello']);
    await until(() => sender.log.some((line) => /\(brief visitor\) left/.test(line)), 'the viewer to leave');
    expect(sender.log.join('\n')).not.toMatch(/ERR_TOO_LARGE|exceeds the limit/);
  });
});

describe('log lines', () => {
  it('quote what a client says about itself clipped, with control characters escaped', async () => {
    await using sender = await startSender();
    const reason = `\u001b[2J${'A'.repeat(10_000)}`;
    const exchange = await rawExchange(sender.server.port, [encodeMessage({ type: 'error', code: 'ERR_ANYTHING', reason }).head]);
    expect(exchange.closedByPeer).toBe(true);
    await until(() => sender.log.some((line) => /closed with an error/.test(line)), 'the sender to log the error');
    const line = sender.log.find((l) => /closed with an error/.test(l))!;
    expect(line).toMatch(/^127\.0\.0\.1:\d+ closed with an error: \\x1b\[2JA+\.\.\. \(ERR_ANYTHING\)$/);
    expect(line.length).toBeLessThan(300);
  });

  it('never print an undefined address, even for clients gone before they were accepted', async () => {
    await using sender = await startSender({ maxViewers: 100 });
    const clients = Array.from(
      { length: 50 },
      (_, i) =>
        new Promise<void>((resolve) => {
          const socket = net.connect(sender.server.port, '127.0.0.1');
          socket.on('error', () => undefined);
          socket.on('connect', () => {
            socket.write(receiverHello(`gone ${i}`));
            socket.resetAndDestroy();
          });
          socket.on('close', () => resolve());
        }),
    );
    await Promise.all(clients);
    await until(() => sender.server.connectionCount === 0, 'every connection to be gone');
    expect(sender.log.length).toBeGreaterThan(0);
    expect(sender.log.filter((line) => /undefined/.test(line))).toEqual([]);
  });
});

describe('--fps 0 (a source with no pace of its own)', () => {
  async function startFlatOut(extraArgs: string[]): Promise<{ sender: AppProcess; port: number }> {
    const sender = startApp('sender', ['--source', 'test', '--size', '640x480', '--fps', '0', '--port', '0', ...extraArgs], { env: headless });
    const line = await sender.waitForLine(/^LISTENING AT: /, { stream: 'stdout', timeoutMs: 60_000 });
    return { sender, port: Number(/:(\d+)$/.exec(line)![1]) };
  }

  it('with nobody watching, the sender still stops on SIGINT', async () => {
    const { sender } = await startFlatOut([]);
    try {
      sender.signal('SIGINT');
      expect(await sender.waitForExit(15_000)).toEqual({ code: 0, signal: null });
    } finally {
      await sender.kill();
    }
  });

  it('a receiver that joins gets the hello and frames, and SIGTERM still stops the sender', async () => {
    const { sender, port } = await startFlatOut([]);
    try {
      const { end, frames } = await watch(port, {}, 20);
      expect(end).toEqual({ kind: 'stopped' });
      expect(frames).toBe(20);
      sender.signal('SIGTERM');
      expect(await sender.waitForExit(15_000)).toEqual({ code: 0, signal: null });
    } finally {
      await sender.kill();
    }
  });

  it('raw frames (whose encoding resolves at once) with a viewer: stats still tick and SIGINT still stops it', async () => {
    const { sender, port } = await startFlatOut(['--codec', 'raw']);
    try {
      const abort = new AbortController();
      let frames = 0;
      const session = runSession(
        { host: '127.0.0.1', port, name: 'raw viewer', signal: abort.signal },
        { onStream: () => undefined, onFrame: () => void frames++ },
      );
      await until(() => frames > 0, 'the first raw frame', 30_000);
      // The stats timer fires while frames flow: the loop yields to timers and I/O.
      await sender.waitForLine(/^sending \d+\.\d fps/, { stream: 'stdout', newOnly: true, timeoutMs: 30_000 });
      sender.signal('SIGINT');
      expect(await sender.waitForExit(15_000)).toEqual({ code: 0, signal: null });
      expect(await session).toMatchObject({ kind: 'bye', reason: 'sender shutting down' });
      abort.abort();
    } finally {
      await sender.kill();
    }
  });
});
