import * as net from 'node:net';
import { once } from 'node:events';
import { freePort, listenOnFreePort, memoryDuplexPair, stallingClient } from '../src';

describe('listenOnFreePort / freePort', () => {
  it('listens on a port the OS picked', async () => {
    const server = net.createServer();
    const port = await listenOnFreePort(server);
    expect(port).toBeGreaterThan(0);
    expect(server.address()).toMatchObject({ address: '127.0.0.1', port });
    await new Promise((resolve) => server.close(resolve));
  });

  it('finds a port that can then be listened on', async () => {
    const port = await freePort();
    expect(Number.isInteger(port) && port > 0 && port < 65536).toBe(true);
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    expect(server.address()).toMatchObject({ address: '127.0.0.1', port });
    await new Promise((resolve) => server.close(resolve));
  });
});

describe('memoryDuplexPair', () => {
  it('carries bytes both ways, in order', async () => {
    const [left, right] = memoryDuplexPair();
    const received: Buffer[] = [];
    right.on('data', (chunk: Buffer) => received.push(chunk));
    left.write('hello ');
    left.write(Buffer.from('world'));
    right.write('back');
    const [reply] = (await once(left, 'data')) as [Buffer];
    expect(reply.toString()).toBe('back');
    await new Promise((resolve) => setImmediate(resolve));
    expect(Buffer.concat(received).toString()).toBe('hello world');
    left.destroy();
  });

  it('applies backpressure when the other end does not read, and resumes when it does', async () => {
    const [writer, reader] = memoryDuplexPair({ highWaterMark: 1024 });
    const chunk = Buffer.alloc(256, 7);
    let writes = 0;
    while (writer.write(chunk)) {
      writes++;
      if (writes > 100) throw new Error('no backpressure');
    }
    // Both buffers (writer 1 KiB + reader 1 KiB) fill up before write() says stop.
    expect(writes).toBeGreaterThanOrEqual(4);
    expect(writes).toBeLessThan(20);
    const drained = once(writer, 'drain');
    let total = 0;
    reader.on('data', (data: Buffer) => (total += data.length));
    await drained;
    await new Promise((resolve) => setImmediate(resolve));
    expect(total).toBe((writes + 1) * chunk.length);
    writer.destroy();
  });

  it('passes end() on and closes both ends', async () => {
    const [left, right] = memoryDuplexPair();
    const chunks: string[] = [];
    right.on('data', (chunk: Buffer) => chunks.push(chunk.toString()));
    left.resume();
    const ended = once(right, 'end');
    const bothClosed = Promise.all([once(left, 'close'), once(right, 'close')]);
    left.end('last words');
    await ended;
    expect(chunks.join('')).toBe('last words');
    await bothClosed;
  });

  it('destroying one end ends the other, after what it had buffered', async () => {
    const [left, right] = memoryDuplexPair();
    left.write('buffered');
    left.destroy();
    const chunks: string[] = [];
    right.on('data', (chunk: Buffer) => chunks.push(chunk.toString()));
    await once(right, 'end');
    expect(chunks.join('')).toBe('buffered');
  });

  it('a write to a destroyed peer fails with EPIPE', async () => {
    const [left, right] = memoryDuplexPair();
    right.destroy();
    await once(right, 'close');
    const failed = once(left, 'error');
    left.write('anyone?');
    const [error] = (await failed) as [NodeJS.ErrnoException];
    expect(error.code).toBe('EPIPE');
  });
});

describe('stallingClient', () => {
  it('connects, sends its handshake, then reads nothing so the server sees backpressure', async () => {
    const server = net.createServer();
    const port = await listenOnFreePort(server);
    const accepted = once(server, 'connection') as Promise<[net.Socket]>;
    await using client = await stallingClient(port, '127.0.0.1', Buffer.from('HELLO'));
    const [socket] = await accepted;
    socket.on('error', () => undefined);
    const serverSideClosed = new Promise((resolve) => socket.once('close', resolve));
    const [handshake] = (await once(socket, 'data')) as [Buffer];
    expect(handshake.toString()).toBe('HELLO');
    const chunk = Buffer.alloc(64 * 1024);
    let written = 0;
    while (socket.write(chunk)) {
      written += chunk.length;
      if (written > 256 * 1024 * 1024) throw new Error('no backpressure');
    }
    // Kernel buffers absorb some, the rest waits in the server's socket. A reader would read
    // the waiting bytes in the first poll of the event loop; a message from the client marks
    // one that has passed (and setImmediate the end of its poll phase).
    const ping = once(socket, 'data') as Promise<[Buffer]>;
    client.socket.write('PING');
    expect((await ping)[0].toString()).toBe('PING');
    await new Promise((resolve) => setImmediate(resolve));
    expect(socket.writableLength).toBeGreaterThan(0);
    expect(client.socket.bytesRead).toBe(0);
    // The bytes were waiting for it: once it reads, every one arrives and the server drains.
    let read = 0;
    const drained = once(socket, 'drain');
    const readAll = new Promise<void>((resolve) =>
      client.socket.on('data', (data: Buffer) => {
        read += data.length;
        if (read === written + chunk.length) resolve();
      }),
    );
    client.socket.resume();
    await Promise.all([drained, readAll]);
    await client.close();
    await serverSideClosed;
    await new Promise((resolve) => server.close(resolve));
  });
});
