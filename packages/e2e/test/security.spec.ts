import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runSession, type SessionEnd } from '@camstream/receiver';
import type { StreamServerOptions } from '@camstream/sender';
import { FakeCamera, listenOnFreePort, stallingClient } from '@camstream/testkit';
import { pump, rawExchange, receiverHello, startServerWith, until } from './harness';

// Authentication, TLS and the sender's limits, over real loopback TCP.

const SECRET = 'correct horse battery staple';

interface Sniffer {
  port: number;
  /** Everything that crossed, both directions. */
  bytes(): Buffer;
  close(): Promise<void>;
}

/** A plain TCP relay that keeps a copy of every byte: what an eavesdropper on the wire sees. */
async function sniffer(targetPort: number): Promise<Sniffer> {
  const seen: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    client.on('data', (d: Buffer) => (seen.push(d), upstream.write(d)));
    upstream.on('data', (d: Buffer) => (seen.push(d), client.write(d)));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  const port = await listenOnFreePort(server);
  return {
    port,
    bytes: () => Buffer.concat(seen),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

async function startSender(extra: Partial<Omit<StreamServerOptions, 'broadcast'>> = {}) {
  const camera = new FakeCamera({ width: 160, height: 120, fps: 60 });
  const log: string[] = [];
  const server = await startServerWith(camera, 'jpeg', { maxViewers: 8, log: (line) => log.push(line), ...extra });
  const stop = new AbortController();
  const pumping = pump(server, camera, stop.signal);
  return {
    server,
    log,
    async [Symbol.asyncDispose]() {
      stop.abort();
      await pumping;
      await server.close('test over');
    },
  };
}

/** Connects once; resolves with how it ended and the number of frames seen. */
async function connectOnce(port: number, options: Partial<Parameters<typeof runSession>[0]> = {}, wantFrames = 10) {
  const abort = new AbortController();
  let frames = 0;
  const end: SessionEnd = await runSession(
    { host: '127.0.0.1', port, name: 'security test', signal: abort.signal, ...options },
    {
      onStream: () => undefined,
      onFrame: () => {
        if (++frames >= wantFrames) abort.abort();
      },
    },
  );
  return { end, frames };
}

describe('shared secret', () => {
  it('lets in a receiver with the right secret, and the secret never crosses the wire', async () => {
    await using sender = await startSender({ secret: SECRET });
    const wire = await sniffer(sender.server.port);
    try {
      const { end, frames } = await connectOnce(wire.port, { secret: SECRET });
      expect(end.kind).toBe('stopped');
      expect(frames).toBe(10);
      const seen = wire.bytes();
      expect(seen.includes('"type":"challenge"')).toBe(true);
      expect(seen.includes('"type":"auth"')).toBe(true);
      expect(seen.includes(SECRET)).toBe(false);
      expect(sender.log.join('\n')).toMatch(/joined .*\(authenticated\)/);
    } finally {
      await wire.close();
    }
  });

  it('refuses a wrong or missing secret with a reason on both sides, and keeps serving the others', async () => {
    await using sender = await startSender({ secret: SECRET });
    const healthy = connectOnce(sender.server.port, { secret: SECRET }, 60);

    const wrong = await connectOnce(sender.server.port, { secret: 'not the secret' });
    expect(wrong.end).toEqual({ kind: 'refused', code: 'ERR_AUTH', reason: 'authentication failed: wrong shared secret' });
    expect(wrong.frames).toBe(0);

    const missing = await connectOnce(sender.server.port);
    expect(missing.end).toMatchObject({ kind: 'refused', code: 'ERR_AUTH', reason: expect.stringMatching(/requires a shared secret.*CAMSTREAM_SECRET/) });

    expect(sender.log.join('\n')).toMatch(/refused 127\.0\.0\.1:\d+: authentication failed: wrong shared secret/);
    expect((await healthy).frames).toBe(60);
  });

  it('refuses a sender that cannot prove the secret (no challenge: maybe an impostor)', async () => {
    await using impostor = await startSender();
    const { end, frames } = await connectOnce(impostor.server.port, { secret: SECRET });
    expect(end.kind).toBe('failed');
    expect((end as { error: Error }).error.message).toMatch(/did not ask for the shared secret/);
    expect(frames).toBe(0);
  });

  it('does not describe the stream to a client that has not authenticated', async () => {
    await using sender = await startSender({ secret: SECRET });
    // The sender answers and closes by itself; everything it said before closing is here.
    const reply = await rawExchange(sender.server.port, [receiverHello('nosy')]);
    expect(reply.closedByPeer).toBe(true);
    expect(reply.messages).toEqual([{ type: 'error', code: 'ERR_AUTH', reason: expect.stringMatching(/requires a shared secret/) }]);
    expect(reply.messages.some((m) => 'stream' in m)).toBe(false);
  });
});

describe('TLS', () => {
  let dir: string;
  let cert: Buffer;
  let key: Buffer;
  let otherCert: Buffer;

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'camstream-tls-'));
    const makeCert = (name: string) => {
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

  it('streams encrypted to a receiver that trusts the CA, and nothing readable crosses the wire', async () => {
    await using sender = await startSender({ tls: { cert, key }, secret: SECRET });
    const wire = await sniffer(sender.server.port);
    try {
      const { end, frames } = await connectOnce(wire.port, { tls: { ca: cert }, secret: SECRET });
      expect(end.kind).toBe('stopped');
      expect(frames).toBe(10);
      const seen = wire.bytes();
      expect(seen.length).toBeGreaterThan(10_000);
      expect(seen.includes('camstream')).toBe(false);
      expect(seen.includes('"type"')).toBe(false);
    } finally {
      await wire.close();
    }
  });

  it('accepts exactly the pinned certificate fingerprint', async () => {
    await using sender = await startSender({ tls: { cert, key } });
    const pinned = new X509Certificate(cert).fingerprint256;
    expect((await connectOnce(sender.server.port, { tls: { fingerprint256: pinned } })).frames).toBe(10);

    const wrongPin = new X509Certificate(otherCert).fingerprint256;
    const refused = await connectOnce(sender.server.port, { tls: { fingerprint256: wrongPin } });
    expect(refused.end.kind).toBe('failed');
    expect((refused.end as { error: Error }).error.message).toMatch(/fingerprint .* is not the pinned/);
  });

  it('refuses a certificate its CA did not sign, and hints at TLS to a plain receiver', async () => {
    await using sender = await startSender({ tls: { cert, key } });
    const untrusted = await connectOnce(sender.server.port, { tls: { ca: otherCert } });
    expect((untrusted.end as { error: Error }).error.message).toMatch(/TLS certificate is not trusted/);
    const plain = await connectOnce(sender.server.port);
    expect((plain.end as { error: Error }).error.message).toMatch(/closed the connection before its hello \(if it uses TLS, connect with --tls\)/);
    expect(plain.frames + untrusted.frames).toBe(0);
  });
});

describe('limits', () => {
  it('drops a client that connects and says nothing, after the handshake deadline', async () => {
    await using sender = await startSender({ handshakeTimeoutMs: 300 });
    const closed = await new Promise<{ ms: number; reply: Buffer }>((resolve) => {
      const started = Date.now();
      const chunks: Buffer[] = [];
      const socket = net.connect(sender.server.port, '127.0.0.1');
      socket.on('data', (d: Buffer) => chunks.push(d));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve({ ms: Date.now() - started, reply: Buffer.concat(chunks) }));
    });
    expect(closed.reply.includes('ERR_HANDSHAKE_TIMEOUT')).toBe(true);
    expect(closed.ms).toBeGreaterThanOrEqual(250);
    expect(sender.log.join('\n')).toMatch(/no hello within 300 ms/);
    await until(() => sender.server.connectionCount === 0, 'the connection to be gone');
  });

  it('disconnects a viewer whose socket stops taking bytes for too long', async () => {
    const camera = new FakeCamera({ width: 640, height: 480, fps: 60 });
    const log: string[] = [];
    const server = await startServerWith(camera, 'raw-bgr', { maxViewers: 4, stalledViewerTimeoutMs: 500, log: (line) => log.push(line) });
    const stop = new AbortController();
    const pumping = pump(server, camera, stop.signal);
    await using stalled = await stallingClient(server.port, '127.0.0.1', receiverHello('stalled'));
    try {
      await until(() => server.viewerList.some((v) => v.name === 'stalled'), 'the stalled viewer to join');
      const viewer = server.viewerList.find((v) => v.name === 'stalled')!;
      await until(() => !server.viewerList.includes(viewer), 'the stalled viewer to be cut off');
      expect(log.filter((l) => /\(stalled\) took no data for 0\.5 s: disconnected/.test(l))).toHaveLength(1);
      // Frames went on for the others meanwhile; for it they were dropped, not queued.
      expect(viewer.dropped).toBeGreaterThan(0);
      await until(() => server.connectionCount === 0, 'its connection to be closed');
      expect(server.viewerList).toEqual([]);
    } finally {
      await stalled.close();
      stop.abort();
      await pumping;
      await server.close('test over');
    }
  });
});
