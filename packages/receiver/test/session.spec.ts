import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { encodeMessage, type FrameFields, type StreamDescription } from '@camstream/protocol';
import { listenOnFreePort } from '@camstream/testkit';
import { AnySizeBufferPool } from '../src/pipeline/any-size-buffer-pool';
import { runSession, type FrameChecks, type SessionEnd, type SessionOptions } from '../src/session/connection';
import { frameBytes, rawStream, TestSender, type TestConnection } from './test-sender';

// One connection (runSession) against the protocol's own SenderSession over real loopback sockets.

const SECRET = 'correct horse battery staple';

interface Seen {
  seq: number;
  payload: Buffer;
  checks: FrameChecks;
}

/** Connects once and collects the frames; `onFrame` may act on each (stop, give back a buffer). */
function connect(port: number, options: Partial<SessionOptions> = {}, onFrame?: (frame: Seen, stop: () => void) => void) {
  const abort = new AbortController();
  const frames: Seen[] = [];
  const end: Promise<SessionEnd> = runSession(
    { host: '127.0.0.1', port, name: 'session test', signal: abort.signal, handshakeTimeoutMs: 20_000, idleTimeoutMs: 20_000, ...options },
    {
      onStream: () => undefined,
      onFrame: (header, payload, checks) => {
        const seen = { seq: header.seq, payload, checks };
        frames.push(seen);
        onFrame?.(seen, () => abort.abort());
      },
    },
  );
  return { end, frames, stop: () => abort.abort() };
}

function raw(width: number, height: number, seq: number): { payload: Buffer; fields: Omit<FrameFields, 'dropped'> } {
  const payload = Buffer.alloc(width * height * 3, seq & 0xff);
  return { payload, fields: { seq, captureTime: Date.now(), width, height, channels: 3, encoding: 'raw-bgr' } };
}

async function sendRaw(connection: TestConnection, width: number, height: number, seq: number, extra: Partial<FrameFields> = {}): Promise<number> {
  const { payload, fields } = raw(width, height, seq);
  return connection.sendFrame(payload, { ...fields, ...extra });
}

function failure(end: SessionEnd): Error & { code?: string } {
  if (end.kind !== 'failed') throw new Error(`expected a failed session, got ${JSON.stringify(end)}`);
  return end.error;
}

describe('acknowledgements', () => {
  it('every frame is acknowledged, in order, with how it arrived: a frame written in pieces has a span', async () => {
    await using sender = await TestSender.start({ stream: rawStream(64, 48) });
    const receiver = connect(sender.port);
    const connection = await sender.connection(1);
    await connection.joined;
    await sendRaw(connection, 64, 48, 0);
    const { payload, fields } = raw(64, 48, 1);
    // 100 bytes (the lengths and most of the header), then the rest in two pieces, 100 ms apart.
    const total = await connection.sendFrameInPieces(payload, fields, [100, 5000], 100);
    await sendRaw(connection, 64, 48, 2);
    await connection.until(() => connection.acks.length === 3, 'three acks');
    receiver.stop();
    expect(await receiver.end).toEqual({ kind: 'stopped' });

    expect(connection.acks.map((a) => a.seq)).toEqual([0, 1, 2]);
    const pieces = connection.acks[1]!;
    expect(pieces.spanBytes).toBe(total - 100);
    expect(pieces.spanMs).toBeGreaterThanOrEqual(195); // two gaps of 100 ms (timers may round down by a ms)
    expect(receiver.frames.map((f) => f.seq)).toEqual([0, 1, 2]);
    // The flow window took every ack: nothing is in flight any more.
    expect(connection.session.window.inFlightFrames).toBe(0);
  });
});

describe('frame checks (PROTOCOL.md 4.2 and 4.4)', () => {
  const RUNGS: StreamDescription = rawStream(8, 4, { rungs: [{ width: 4, height: 2 }] });

  it('takes a frame of a lower rung at that rung size, and refuses one of another size with ERR_STREAM_MISMATCH', async () => {
    await using sender = await TestSender.start({ stream: RUNGS });
    const receiver = connect(sender.port);
    const connection = await sender.connection(1);
    await connection.joined;
    await sendRaw(connection, 8, 4, 0);
    await sendRaw(connection, 4, 2, 1, { rung: 1 });
    await sendRaw(connection, 8, 4, 2, { rung: 1 }); // rung 1 is 4x2
    const error = failure(await receiver.end);
    expect(error).toMatchObject({ code: 'ERR_STREAM_MISMATCH', message: 'frame 2 is 8x4x3 raw-bgr, but rung 1 was announced as 4x2x3 raw-bgr' });
    expect(receiver.frames.map((f) => [f.seq, f.checks.rung])).toEqual([
      [0, 0],
      [1, 1],
    ]);
    // The sender is told why, and got no ack for the refused frame.
    await connection.until(() => connection.end !== undefined, 'the error to reach the sender');
    expect(connection.end).toMatchObject({ kind: 'peer-error', code: 'ERR_STREAM_MISMATCH', reason: error.message });
    expect(connection.acks.map((a) => a.seq)).toEqual([0, 1]);
  });

  it('refuses a rung the stream did not announce', async () => {
    await using sender = await TestSender.start({ stream: RUNGS });
    const receiver = connect(sender.port);
    const connection = await sender.connection(1);
    await connection.joined;
    await sendRaw(connection, 4, 2, 0, { rung: 2 });
    expect(failure(await receiver.end)).toMatchObject({ code: 'ERR_STREAM_MISMATCH', message: 'frame 0 is on rung 2, but the stream announced 1 lower rung(s)' });
  });

  it('counts declared drops and undeclared gaps apart', async () => {
    await using sender = await TestSender.start({ stream: rawStream(8, 4) });
    const receiver = connect(sender.port);
    const connection = await sender.connection(1);
    await connection.joined;
    await sendRaw(connection, 8, 4, 10, { dropped: 7 }); // joined a running stream: any number, any baseline
    await sendRaw(connection, 8, 4, 13, { dropped: 9 }); // 2 missing, 2 declared
    await sendRaw(connection, 8, 4, 16, { dropped: 10 }); // 2 missing, 1 declared: 1 gap
    await sendRaw(connection, 8, 4, 17, { dropped: 10 });
    await connection.until(() => connection.acks.length === 4, 'four acks');
    receiver.stop();
    await receiver.end;
    expect(receiver.frames.map((f) => [f.seq, f.checks.declaredDrops, f.checks.undeclaredGap])).toEqual([
      [10, 0, 0],
      [13, 2, 0],
      [16, 1, 1],
      [17, 0, 0],
    ]);
  });

  it('refuses a drop counter that rises by more than the frames missing (ERR_OUT_OF_ORDER)', async () => {
    await using sender = await TestSender.start({ stream: rawStream(8, 4) });
    const receiver = connect(sender.port);
    const connection = await sender.connection(1);
    await connection.joined;
    await sendRaw(connection, 8, 4, 0);
    await sendRaw(connection, 8, 4, 2, { dropped: 5 });
    expect(failure(await receiver.end)).toMatchObject({
      code: 'ERR_OUT_OF_ORDER',
      message: 'frame 2 declares 5 dropped frame(s) since frame 0, but only 1 are missing',
    });
    await connection.until(() => connection.end !== undefined, 'the error to reach the sender');
    expect(connection.end).toMatchObject({ kind: 'peer-error', code: 'ERR_OUT_OF_ORDER' });
    expect(connection.acks.map((a) => a.seq)).toEqual([0]);
  });
});

describe('how a session ends', () => {
  it('stopping says bye to the sender', async () => {
    await using sender = await TestSender.start({ stream: rawStream(8, 4) });
    const receiver = connect(sender.port);
    const connection = await sender.connection(1);
    await connection.joined;
    receiver.stop();
    expect(await receiver.end).toEqual({ kind: 'stopped' });
    await connection.until(() => connection.end !== undefined, 'the bye');
    expect(connection.end).toEqual({ kind: 'bye', reason: 'receiver stopping' });
  });

  it('a session asked to stop before it starts does not connect', async () => {
    await using sender = await TestSender.start({ stream: rawStream(8, 4) });
    const stopped = new AbortController();
    stopped.abort();
    const end = await runSession({ host: '127.0.0.1', port: sender.port, name: 'late', signal: stopped.signal }, { onStream: () => undefined, onFrame: () => undefined });
    expect(end).toEqual({ kind: 'stopped' });
    expect(sender.connections).toEqual([]);
  });

  it('decoding stops at the bye: garbage in the same write after it is never read', async () => {
    await using sender = await TestSender.start({ stream: rawStream(8, 4) });
    const receiver = connect(sender.port);
    const connection = await sender.connection(1);
    await connection.joined;
    const bye = encodeMessage({ type: 'bye', reason: 'sender done' }).head;
    await connection.write(Buffer.concat([frameBytes(raw(8, 4, 0).payload, { ...raw(8, 4, 0).fields, dropped: 0 }), bye, Buffer.alloc(64, 0xff)]));
    expect(await receiver.end).toEqual({ kind: 'bye', reason: 'sender done' });
    expect(receiver.frames).toHaveLength(1);
    await connection.closed;
    expect(connection.received.filter((h) => h.type === 'error')).toEqual([]);
  });

  it("the sender's error is its refusal, never answered with an error", async () => {
    await using sender = await TestSender.start({ stream: rawStream(8, 4) });
    const receiver = connect(sender.port);
    const connection = await sender.connection(1);
    await connection.joined;
    await connection.write(Buffer.concat([encodeMessage({ type: 'error', code: 'ERR_FULL', reason: 'no room' }).head, Buffer.alloc(64, 0xff)]));
    expect(await receiver.end).toEqual({ kind: 'refused', code: 'ERR_FULL', reason: 'no room' });
    await connection.closed;
    expect(connection.received.map((h) => h.type)).toEqual(['hello']);
  });

  it('a sender that closes in the middle of a large frame: the receiver says so', async () => {
    await using sender = await TestSender.start({ stream: rawStream(320, 240) });
    const receiver = connect(sender.port, { payloadBuffers: new AnySizeBufferPool(2) });
    const connection = await sender.connection(1);
    await connection.joined;
    const { payload, fields } = raw(320, 240, 0);
    await connection.write(frameBytes(payload, { ...fields, dropped: 0 }).subarray(0, 100_000));
    connection.socket.end();
    expect(failure(await receiver.end).message).toBe('the sender closed the connection in the middle of a message');
  });

  it('gives up on a sender that never says hello, and on one that goes quiet', async () => {
    // It reads (and so sees the receiver hang up) but never answers.
    const mute = net.createServer((socket) => socket.on('error', () => undefined).resume());
    const port = await listenOnFreePort(mute);
    try {
      const end = await connect(port, { handshakeTimeoutMs: 300 }).end;
      expect(end).toMatchObject({ kind: 'failed', connected: true });
      expect(failure(end).message).toBe('no hello from the sender within 300 ms');
    } finally {
      await new Promise((resolve) => mute.close(resolve));
    }
    await using sender = await TestSender.start({ stream: rawStream(8, 4) });
    const quiet = connect(sender.port, { idleTimeoutMs: 300 });
    const connection = await sender.connection(1);
    await connection.joined;
    await sendRaw(connection, 8, 4, 0);
    expect(failure(await quiet.end).message).toBe('no data from the sender for 300 ms: the connection is dead');
    expect(quiet.frames).toHaveLength(1);
  });

  it('names a peer that is not a camstream sender, quoting what it sent', async () => {
    const server = http.createServer((_request, response) => response.end('hello'));
    const port = await listenOnFreePort(server);
    try {
      const error = failure(await connect(port).end);
      expect(error.message).toBe(`the peer at 127.0.0.1:${port} is not a camstream sender: it sent "HTTP/1.1 400 Bad Request\\r\\n..."`);
      expect(error.code).toMatch(/^ERR_(TOO_LARGE|LENGTH_MISMATCH)$/);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('limits and trust', () => {
  it('refuses a stream larger than --max-size in the handshake, telling the sender why', async () => {
    await using sender = await TestSender.start({ stream: rawStream(1920, 1080) });
    const receiver = connect(sender.port, { maxStreamSize: { width: 1280, height: 720 } });
    const error = failure(await receiver.end);
    expect(error).toMatchObject({ code: 'ERR_STREAM_TOO_LARGE', final: true });
    expect(error.message).toBe('the sender announced a 1920x1080 stream, larger than this receiver accepts (1280x720; see --max-size)');
    const connection = await sender.connection(1);
    await connection.until(() => connection.end !== undefined, 'the error to reach the sender');
    expect(connection.end).toMatchObject({ kind: 'peer-error', code: 'ERR_STREAM_TOO_LARGE' });
  });

  it('proves a shared secret, and refuses a sender that cannot prove it', async () => {
    await using sender = await TestSender.start({ stream: rawStream(8, 4), secret: SECRET });
    const right = connect(sender.port, { secret: SECRET }, (_frame, stop) => stop());
    const first = await sender.connection(1);
    await first.joined;
    await sendRaw(first, 8, 4, 0);
    expect(await right.end).toEqual({ kind: 'stopped' });
    await first.until(() => first.end !== undefined, 'the bye');
    expect(first.received.map((h) => h.type)).toEqual(['hello', 'auth', 'ack', 'bye']);

    const wrong = await connect(sender.port, { secret: 'not the secret at all' }).end;
    expect(wrong).toEqual({ kind: 'refused', code: 'ERR_AUTH', reason: 'authentication failed: wrong shared secret' });

    await using impostor = await TestSender.start({ stream: rawStream(8, 4) }); // knows no secret
    const error = failure(await connect(impostor.port, { secret: SECRET }).end);
    expect(error).toMatchObject({ code: 'ERR_AUTH', final: true, message: expect.stringContaining('did not ask for the shared secret') });
  });

  describe('TLS', () => {
    let dir: string;
    let cert: Buffer;
    let key: Buffer;
    let otherCert: Buffer;

    beforeAll(() => {
      dir = mkdtempSync(path.join(tmpdir(), 'camstream-receiver-tls-'));
      const makeCert = (name: string) => {
        // prettier-ignore
        execFileSync('openssl', [
          'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
          '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
          '-keyout', path.join(dir, `${name}.key`), '-out', path.join(dir, `${name}.pem`),
        ], { stdio: 'ignore' });
        return { cert: readFileSync(path.join(dir, `${name}.pem`)), key: readFileSync(path.join(dir, `${name}.key`)) };
      };
      ({ cert, key } = makeCert('sender'));
      otherCert = makeCert('other').cert;
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('streams to a receiver that trusts the CA or pins the fingerprint, with arrival spans and pooled payloads', async () => {
      await using sender = await TestSender.start({ stream: rawStream(320, 240), tls: { cert, key } });
      const pool = new AnySizeBufferPool(2);
      const byCa = connect(sender.port, { tls: { ca: cert }, payloadBuffers: pool }, (_frame, stop) => stop());
      const first = await sender.connection(1);
      await first.joined;
      const { payload, fields } = raw(320, 240, 0);
      const total = await first.sendFrameInPieces(payload, fields, [100], 100);
      expect(await byCa.end).toEqual({ kind: 'stopped' });
      expect(byCa.frames[0]!.payload.equals(payload)).toBe(true);
      expect(byCa.frames[0]!.checks.pooled).toBe(true);
      await first.until(() => first.acks.length === 1, 'the ack');
      expect(first.acks[0]).toMatchObject({ seq: 0, spanBytes: total - 100 });

      const pinned = connect(sender.port, { tls: { fingerprint256: new X509Certificate(cert).fingerprint256 } }, (_frame, stop) => stop());
      const second = await sender.connection(2);
      await second.joined;
      await sendRaw(second, 320, 240, 0);
      expect(await pinned.end).toEqual({ kind: 'stopped' });
    });

    it('refuses another certificate (final: ERR_AUTH), and hints at TLS to a plain receiver', async () => {
      await using sender = await TestSender.start({ stream: rawStream(8, 4), tls: { cert, key } });
      const wrongPin = failure(await connect(sender.port, { tls: { fingerprint256: new X509Certificate(otherCert).fingerprint256 } }).end);
      expect(wrongPin).toMatchObject({ code: 'ERR_AUTH', final: true, message: expect.stringMatching(/fingerprint .* is not the pinned/) });
      const untrusted = failure(await connect(sender.port, { tls: { ca: otherCert } }).end);
      expect(untrusted).toMatchObject({ code: 'ERR_AUTH', message: expect.stringMatching(/TLS certificate is not trusted/) });
      const plain = failure(await connect(sender.port).end);
      expect(plain.message).toMatch(/closed the connection before its hello \(if it uses TLS, connect with --tls\)|reset the connection/);
    });
  });
});

describe('pooled payloads', () => {
  it('land in buffers of the pool, read straight from the socket, and a buffer given back is reused', async () => {
    await using sender = await TestSender.start({ stream: rawStream(320, 240) });
    const pool = new AnySizeBufferPool(2);
    const contents: boolean[] = [];
    const receiver = connect(sender.port, { payloadBuffers: pool }, ({ seq, payload, checks }, stop) => {
      contents.push(checks.pooled && payload.equals(raw(320, 240, seq).payload));
      pool.give(payload);
      if (seq === 5) stop();
    });
    const connection = await sender.connection(1);
    await connection.joined;
    for (let seq = 0; seq < 3; seq++) await sendRaw(connection, 320, 240, seq);
    // In many pieces too: most of the payload then arrives in reads of its own.
    for (let seq = 3; seq < 6; seq++) {
      const { payload, fields } = raw(320, 240, seq);
      await connection.sendFrameInPieces(payload, fields, [50, 70_000, 140_000, 200_000], 20);
    }
    expect(await receiver.end).toEqual({ kind: 'stopped' });
    expect(contents).toEqual([true, true, true, true, true, true]);
    expect(new Set(receiver.frames.map((f) => f.payload.buffer)).size).toBe(1);
    expect(pool.allocations).toBe(1);
  });
});
