import * as net from 'node:net';
import { ChaosProxy } from '../src';

// The proxy's pacing needs Nagle's algorithm off on both of its sockets: otherwise each small
// piece a slow link forwards waits for the peer's delayed ACK (up to 40 ms), and receivers that
// time arrivals (the browser page, TCP receivers acking frames) see a far slower link than set.
// Which sockets have it off is not observable from outside, so this watches setNoDelay.

test('turns Nagle off on the accepted socket and on the one it opens to the target', async () => {
  const target = net.createServer((socket) => socket.end('hello'));
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
  const spy = jest.spyOn(net.Socket.prototype, 'setNoDelay');
  try {
    await using proxy = await ChaosProxy.start({ target: { host: '127.0.0.1', port: (target.address() as net.AddressInfo).port } });
    const client = net.connect(proxy.port, proxy.host);
    const clientPort = await new Promise<number>((resolve) => client.once('connect', () => resolve(client.localPort!)));
    let received = '';
    client.on('data', (chunk: Buffer) => (received += chunk.toString()));
    await new Promise((resolve) => client.once('end', resolve));
    expect(received).toBe('hello');
    const calls = spy.mock.contexts.map((socket, i) => ({ socket: socket as net.Socket, arg: spy.mock.calls[i]![0] }));
    // The proxy's end of the client's connection, and its connection to the target.
    const accepted = calls.find(({ socket }) => socket !== client && socket.remotePort === clientPort);
    const upstream = calls.find(({ socket }) => socket.remotePort === (target.address() as net.AddressInfo).port);
    expect(accepted?.arg).toBe(true);
    expect(upstream?.arg).toBe(true);
    client.destroy();
  } finally {
    spy.mockRestore();
    await new Promise((resolve) => target.close(resolve));
  }
});
