import net from 'node:net';
import { encodeMessage, MessageDecoder, PROTOCOL_NAME, PROTOCOL_VERSION, type Header } from '@camstream/protocol';
import { FakeCamera, stallingClient } from '@camstream/testkit';
import { startSender, until } from './sender-harness';
import { TestReceiver } from './test-receiver';

// The stream server's own conduct, over real loopback sockets (its limits under hostile load are
// tested end to end in packages/e2e).

const SECRET = 's3cretvalue';

describe('the stream server', () => {
  it("says the sender's --name in its hello, the source in the stream, and rungs only for JPEG", async () => {
    for (const [encoding, rungs] of [['jpeg', 7], ['png', 0], ['raw-bgr', 0]] as const) {
      // Asked for a quality: only JPEG has one.
      await using sender = await startSender(new FakeCamera({ width: 320, height: 240, fps: 30 }), encoding, { quality: 80, server: { name: 'porch camera' } });
      const receiver = await TestReceiver.connect({ port: sender.server.port });
      await receiver.until(() => receiver.stream !== undefined, 'the stream');
      expect(receiver.senderName).toBe('porch camera');
      expect(receiver.stream).toMatchObject({ width: 320, height: 240, fps: 30, encoding, source: 'fake camera 320x240' });
      expect(receiver.stream!.rungs?.length ?? 0).toBe(rungs);
      expect(receiver.stream!.quality).toBe(encoding === 'jpeg' ? 80 : undefined);
      await receiver.leave();
    }
  });

  it('takes a viewer slot only once the handshake finished: a full sender says ERR_FULL after authentication', async () => {
    await using sender = await startSender(new FakeCamera({ width: 64, height: 48, fps: 30 }), 'jpeg', { server: { maxViewers: 1, secret: SECRET } });
    const first = await TestReceiver.connect({ port: sender.server.port, name: 'first', secret: SECRET });
    await first.until(() => first.stream !== undefined, 'the first stream');
    // A socket in its handshake takes no slot, and a wrong secret is refused as such, not as full.
    await using idle = await stallingClient(sender.server.port);
    const wrong = await TestReceiver.connect({ port: sender.server.port, name: 'wrong', secret: 'not the secret' });
    await wrong.closed;
    expect(wrong.end).toMatchObject({ kind: 'refused', code: 'ERR_AUTH' });
    const second = await TestReceiver.connect({ port: sender.server.port, name: 'second', secret: SECRET });
    await second.closed;
    expect(second.end).toEqual({ kind: 'refused', code: 'ERR_FULL', reason: 'the sender is at its limit of 1 viewers' });
    expect(second.stream).toBeUndefined(); // never described to it
    expect(sender.server.viewerList.map((v) => v.name)).toEqual(['first']);
    await first.leave();
    await until(() => sender.server.viewerList.length === 0, 'the first viewer to leave');
    const third = await TestReceiver.connect({ port: sender.server.port, name: 'third', secret: SECRET });
    await third.until(() => third.stream !== undefined, 'the stream, now that a slot is free');
    await third.leave();
    expect(idle.socket.destroyed).toBe(false);
  });

  it('refuses a client that does not finish its hello by the deadline, and says so', async () => {
    await using sender = await startSender(new FakeCamera({ width: 64, height: 48, fps: 30 }), 'jpeg', { server: { handshakeTimeoutMs: 300 } });
    const received: Header[] = [];
    await new Promise<void>((resolve) => {
      const socket = net.connect(sender.server.port, '127.0.0.1', () => socket.write(encodeMessage({ type: 'hello', protocol: PROTOCOL_NAME, version: PROTOCOL_VERSION, role: 'receiver', name: 'half' }).head.subarray(0, 20)));
      const decoder = new MessageDecoder();
      socket.on('data', (chunk: Buffer) => decoder.push(chunk, ({ header }) => void received.push(header)));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve());
    });
    expect(received).toEqual([{ type: 'error', code: 'ERR_HANDSHAKE_TIMEOUT', reason: 'no hello received in time' }]);
    expect(sender.log).toContainEqual(expect.stringMatching(/^refused 127\.0\.0\.1:\d+: no hello within 300 ms$/));
    await until(() => sender.server.connectionCount === 0, 'the connection to be gone');
  });

  it('pings a viewer that gets nothing else', async () => {
    await using sender = await startSender(new FakeCamera({ width: 64, height: 48, fps: 30 }), 'jpeg', { server: { pingIntervalMs: 100 } });
    const receiver = await TestReceiver.connect({ port: sender.server.port });
    await receiver.until(() => receiver.pings >= 2, 'two pings');
    expect(receiver.end).toBeUndefined();
    await receiver.leave();
  });

  it('logs a viewer leaving with its totals and its rung', async () => {
    await using sender = await startSender(new FakeCamera({ width: 64, height: 48, fps: 30 }), 'jpeg', { quality: 80 });
    const receiver = await TestReceiver.connect({ port: sender.server.port, name: 'brief' });
    await receiver.until(() => receiver.stream !== undefined, 'the stream');
    void sender.pump();
    await receiver.until(() => receiver.frames.length >= 5, '5 frames');
    await receiver.leave('seen enough');
    await until(() => sender.log.some((line) => / left: /.test(line)), 'the viewer to leave');
    expect(sender.log.find((line) => / left: /.test(line))).toMatch(/^viewer #1 \(brief\) left: \d+ frames sent, 0 frames dropped, last on rung 0 \(64x48 q80\), link ([\d.]+ Mbit\/s|too fast to measure)$/);
  });

  it('close() says bye to every viewer, closes connections still in their handshake, and resolves once every socket is closed', async () => {
    const sender = await startSender(new FakeCamera({ width: 64, height: 48, fps: 30 }), 'jpeg');
    const viewers = await Promise.all(['a', 'b'].map((name) => TestReceiver.connect({ port: sender.server.port, name })));
    await until(() => sender.server.viewerList.length === 2, 'both viewers');
    void sender.pump();
    await Promise.all(viewers.map((v) => v.until(() => v.frames.length > 0, 'a frame')));
    const pending = await stallingClient(sender.server.port);
    // A viewer that never reads its bye: it is cut off after a grace period.
    const deaf = await stallingClient(sender.server.port, '127.0.0.1', encodeMessage({ type: 'hello', protocol: PROTOCOL_NAME, version: PROTOCOL_VERSION, role: 'receiver', name: 'deaf' }).head);
    await until(() => sender.server.viewerList.length === 3, 'the deaf viewer');
    await sender.stopPump();
    // Resolves once every socket is closed: the viewers' at their bye, the deaf one's after its grace.
    await sender.server.close('sender shutting down');
    expect(sender.server.connectionCount).toBe(0);
    expect(sender.log).toContainEqual(expect.stringMatching(/^viewer #3 \(deaf\) left: /));
    for (const v of viewers) {
      await v.closed;
      expect(v.end).toEqual({ kind: 'bye', reason: 'sender shutting down' });
    }
    await Promise.all([pending.close(), deaf.close()]);
    await sender[Symbol.asyncDispose]();
  });
});
