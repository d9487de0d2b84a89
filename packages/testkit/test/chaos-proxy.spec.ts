import * as net from 'node:net';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { ChaosProxy, listenOnFreePort } from '../src';

/** A server that records what each connection sends and can echo it back. */
async function startBackend(mode: 'sink' | 'echo') {
  const received: Buffer[][] = [];
  const closed: Promise<void>[] = [];
  const accepted: Array<() => void> = [];
  const server = net.createServer((socket) => {
    const chunks: Buffer[] = [];
    received.push(chunks);
    socket.on('error', () => undefined);
    closed.push(new Promise((resolve) => socket.on('close', () => resolve())));
    for (const notify of accepted.splice(0)) notify();
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (mode === 'echo') socket.write(chunk);
    });
  });
  const port = await listenOnFreePort(server);
  const connectionCount = () => new Promise<number>((resolve, reject) => server.getConnections((error, count) => (error ? reject(error) : resolve(count))));
  return {
    port,
    received: (index = 0) => Buffer.concat(received[index] ?? []),
    /** Resolves when the index-th connection (once it exists) has closed. */
    closedConnection: async (index = 0): Promise<void> => {
      while (closed.length <= index) await new Promise<void>((resolve) => accepted.push(resolve));
      await closed[index];
    },
    connectionCount,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function connect(port: number): Promise<net.Socket> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  return socket;
}

async function waitFor(condition: () => Promise<boolean> | boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Collects everything the socket receives until it ends or closes. */
function collect(socket: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve) => socket.once('close', () => resolve(Buffer.concat(chunks))));
}

describe('ChaosProxy', () => {
  it.each([1, 3, 7])('delivers exactly the bytes sent, in order, with chunks of 1..%i bytes and delays', async (maxChunkBytes) => {
    const backend = await startBackend('echo');
    await using proxy = await ChaosProxy.start({ target: { host: '127.0.0.1', port: backend.port }, maxChunkBytes, delayMs: 1, seed: maxChunkBytes });
    const client = await connect(proxy.port);
    const echoed = collect(client);
    const payload = randomBytes(300 * maxChunkBytes);
    // Several writes, so chunk boundaries from the client and from the proxy interleave.
    for (let offset = 0; offset < payload.length; offset += 97) client.write(payload.subarray(offset, offset + 97));
    client.end();
    expect((await echoed).equals(payload)).toBe(true);
    expect(backend.received().equals(payload)).toBe(true);
    expect(proxy.bytesForwarded).toEqual({ upstream: payload.length, downstream: payload.length });
    expect(proxy.connections).toBe(1);
    await backend.close();
  });

  it('re-splits a larger stream into 1-byte chunks without losing or reordering any', async () => {
    const backend = await startBackend('echo');
    await using proxy = await ChaosProxy.start({ target: { host: '127.0.0.1', port: backend.port }, maxChunkBytes: 1 });
    const client = await connect(proxy.port);
    const echoed = collect(client);
    const payload = randomBytes(50_000);
    client.end(payload);
    expect((await echoed).equals(payload)).toBe(true);
    await backend.close();
  });

  it('passes large transfers through with backpressure intact', async () => {
    const backend = await startBackend('sink');
    await using proxy = await ChaosProxy.start({ target: { host: '127.0.0.1', port: backend.port }, maxChunkBytes: 4096 });
    const client = await connect(proxy.port);
    const payload = randomBytes(8 * 1024 * 1024);
    client.end(payload);
    await backend.closedConnection();
    expect(backend.received().equals(payload)).toBe(true);
    await backend.close();
  });

  it('does not read ahead of a target that stops reading (backpressure passes through)', async () => {
    let backendSocket: net.Socket | undefined;
    const received: Buffer[] = [];
    const server = net.createServer((socket) => {
      backendSocket = socket;
      socket.pause();
      socket.on('data', (chunk: Buffer) => received.push(chunk));
    });
    const port = await listenOnFreePort(server);
    try {
      await using proxy = await ChaosProxy.start({ target: { host: '127.0.0.1', port } });
      const client = await connect(proxy.port);
      const payload = randomBytes(64 * 1024 * 1024);
      client.end(payload);
      // Wait until forwarding stops: the count has moved, then stays put over 10 looks in a row.
      let last = 0;
      let unchanged = 0;
      await waitFor(() => {
        const now = proxy.bytesForwarded.upstream;
        unchanged = now > 0 && now === last ? unchanged + 1 : 0;
        last = now;
        return unchanged >= 10;
      }, 20_000);
      // Only what fits in kernel buffers got through; the proxy did not swallow the rest.
      expect(proxy.bytesForwarded.upstream).toBeLessThan(40 * 1024 * 1024);
      expect(client.writableLength).toBeGreaterThan(0);
      const backendClosed = once(backendSocket!, 'end');
      backendSocket!.resume();
      await backendClosed;
      expect(Buffer.concat(received).equals(payload)).toBe(true);
    } finally {
      // Also when an expectation failed: a paused socket would keep the server (and jest) alive.
      backendSocket?.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('cuts upstream after exactly N bytes', async () => {
    const backend = await startBackend('sink');
    await using proxy = await ChaosProxy.start({
      target: { host: '127.0.0.1', port: backend.port },
      maxChunkBytes: 5,
      cutAfterBytes: { upstream: 1234 },
    });
    const client = await connect(proxy.port);
    const clientClosed = once(client, 'close');
    const payload = randomBytes(10_000);
    client.write(payload);
    await backend.closedConnection();
    expect(backend.received().equals(payload.subarray(0, 1234))).toBe(true);
    await clientClosed;
    expect(proxy.bytesForwarded.upstream).toBe(1234);
    await backend.close();
  });

  it('cuts downstream after exactly N bytes', async () => {
    const backend = await startBackend('echo');
    await using proxy = await ChaosProxy.start({ target: { host: '127.0.0.1', port: backend.port }, cutAfterBytes: { downstream: 777 } });
    const client = await connect(proxy.port);
    const received = collect(client);
    const payload = randomBytes(5000);
    client.write(payload);
    expect((await received).equals(payload.subarray(0, 777))).toBe(true);
    await backend.closedConnection();
    expect(proxy.bytesForwarded.downstream).toBe(777);
    await backend.close();
  });

  it('cutAll() drops current connections and keeps accepting new ones', async () => {
    const backend = await startBackend('echo');
    await using proxy = await ChaosProxy.start({ target: { host: '127.0.0.1', port: backend.port } });
    const first = await connect(proxy.port);
    first.write('ping');
    await once(first, 'data');
    const firstClosed = once(first, 'close');
    proxy.cutAll();
    await firstClosed;
    await backend.closedConnection(0);
    const second = await connect(proxy.port);
    second.write('again');
    const [reply] = (await once(second, 'data')) as [Buffer];
    expect(reply.toString()).toBe('again');
    expect(proxy.connections).toBe(2);
    second.destroy();
    await backend.close();
  });

  it('close() closes every socket it opened', async () => {
    const backend = await startBackend('echo');
    const proxy = await ChaosProxy.start({ target: { host: '127.0.0.1', port: backend.port }, delayMs: 5 });
    const clients = await Promise.all([connect(proxy.port), connect(proxy.port), connect(proxy.port)]);
    for (const client of clients) client.write('hello');
    await waitFor(async () => (await backend.connectionCount()) === 3);
    const clientsClosed = Promise.all(clients.map((client) => once(client, 'close')));
    await proxy.close();
    await clientsClosed;
    await waitFor(async () => (await backend.connectionCount()) === 0);
    expect(proxy.activeConnections).toBe(0);
    await expect(connect(proxy.port)).rejects.toThrow();
    await backend.close();
  });

  it('closes the client when the target refuses', async () => {
    const backend = await startBackend('sink');
    const port = backend.port;
    await backend.close();
    await using proxy = await ChaosProxy.start({ target: { host: '127.0.0.1', port } });
    const client = await connect(proxy.port);
    const received = collect(client);
    client.write('anyone there?');
    expect((await received).length).toBe(0);
    expect(proxy.connections).toBe(1);
    expect(proxy.bytesForwarded).toEqual({ upstream: 0, downstream: 0 });
    await waitFor(() => proxy.activeConnections === 0);
  });
});
