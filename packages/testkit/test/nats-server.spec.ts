import { existsSync, readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { startNatsCluster, startNatsServer } from '../src';

/** The server's INFO line: the first thing it sends to a client, plain text even on a TLS server. */
function readInfo(port: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
      const end = text.indexOf('\r\n');
      if (end === -1) return;
      socket.destroy();
      const line = text.slice(0, end);
      if (!line.startsWith('INFO ')) reject(new Error(`expected INFO, got ${line}`));
      else resolve(JSON.parse(line.slice(5)) as Record<string, unknown>);
    });
    socket.on('error', reject);
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
}

describe('startNatsServer', () => {
  it('starts a real nats-server on free ports with the max_payload asked for, and stops it', async () => {
    const server = await startNatsServer({ maxPayload: 3 * 1024 * 1024 });
    const pid = server.process.pid;
    const info = await readInfo(server.port);
    expect(info['max_payload']).toBe(3 * 1024 * 1024);
    expect(info['auth_required']).toBeUndefined();
    const varz = await server.varz();
    expect(varz.max_payload).toBe(3 * 1024 * 1024);
    expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);
    await server.dispose();
    expect(isAlive(pid)).toBe(false);
    await expect(readInfo(server.port)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('defaults to an 8 MiB max_payload (raw 720p frames are 2.76 MB; the server default is 1 MiB)', async () => {
    await using server = await startNatsServer();
    expect((await readInfo(server.port))['max_payload']).toBe(8 * 1024 * 1024);
  });

  it('requires the user and password, or the token, it was given', async () => {
    await using withPassword = await startNatsServer({ user: 'alice', password: 'pw' });
    expect((await readInfo(withPassword.port))['auth_required']).toBe(true);
    await using withToken = await startNatsServer({ token: 's3cret' });
    expect((await readInfo(withToken.port))['auth_required']).toBe(true);
    await expect(startNatsServer({ user: 'bob' })).rejects.toThrow(/both user and password/);
  });

  it('serves TLS with a generated certificate that its caFile verifies', async () => {
    await using server = await startNatsServer({ tls: true });
    expect(server.url).toBe(`tls://127.0.0.1:${server.port}`);
    expect(server.caFile && existsSync(server.caFile)).toBe(true);
    const info = await readInfo(server.port);
    expect(info['tls_required']).toBe(true);
    // The INFO line is plain; the client then upgrades the same connection (nats.js does this).
    const verified = await new Promise<boolean>((resolve, reject) => {
      const plain = net.connect(server.port, '127.0.0.1');
      plain.once('data', () => {
        const secure = tls.connect({ socket: plain, ca: readFileSync(server.caFile!), servername: 'localhost' }, () => {
          resolve(secure.authorized);
          secure.destroy();
        });
        secure.on('error', reject);
      });
      plain.on('error', reject);
    });
    expect(verified).toBe(true);
  });

  it('restarts on the same port with a new process', async () => {
    await using server = await startNatsServer();
    const before = server.process.pid;
    await server.restart();
    expect(server.process.pid).not.toBe(before);
    expect(isAlive(before)).toBe(false);
    expect((await readInfo(server.port))['server_name']).toBe(server.name);
  });
});

describe('startNatsCluster', () => {
  it('starts two nodes with a route between them, and restarts one until the route is back', async () => {
    await using cluster = await startNatsCluster(2);
    const [a, b] = cluster.servers;
    expect((await a!.routez()).num_routes).toBe(1);
    expect((await b!.routez()).num_routes).toBe(1);
    const infoA = await readInfo(a!.port);
    // Each node tells clients about the other, so a client can fail over to it.
    expect(infoA['connect_urls']).toEqual(expect.arrayContaining([`127.0.0.1:${b!.port}`]));

    await a!.restart();
    await cluster.routesUp();
    expect((await b!.routez()).num_routes).toBe(1);
  });
});
