import net from 'node:net';
import type { Delivery } from '@camstream/fanout';
import { MessageDecoder, prepareFrame, PROTOCOL_NAME, PROTOCOL_VERSION, SenderSession, type FlowWindowOptions, type FrameHeader, type StreamDescription } from '@camstream/protocol';
import { listenOnFreePort } from '@camstream/testkit';
import { OutgoingFrame } from './outgoing-frame';
import { TcpViewer } from './tcp-viewer';

const stream: StreamDescription = { width: 4, height: 4, fps: 30, pixelFormat: 'bgr24', encoding: 'jpeg', quality: 80 };

/** A connected pair of real loopback sockets: the sender's end and the receiver's. */
async function socketPair(): Promise<{ sender: net.Socket; receiver: net.Socket; close(): Promise<void> }> {
  const server = net.createServer();
  const port = await listenOnFreePort(server);
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const receiver = net.connect(port, '127.0.0.1');
  const sender = await accepted;
  await new Promise((resolve) => receiver.once('connect', resolve));
  server.close();
  return {
    sender,
    receiver,
    async close() {
      const closed = [sender, receiver].map((s) => new Promise((resolve) => (s.destroyed ? resolve(undefined) : s.once('close', resolve))));
      sender.destroy();
      receiver.destroy();
      await Promise.all(closed);
    },
  };
}

/** A session past its handshake, as the stream server hands it to a viewer. */
function streamingSession(flow?: FlowWindowOptions): SenderSession {
  const session = new SenderSession({ stream, now: 0, ...(flow ? { flow } : {}) });
  session.receive({ type: 'hello', protocol: PROTOCOL_NAME, version: PROTOCOL_VERSION, role: 'receiver', name: 'r' }, 0);
  expect(session.streaming).toBe(true);
  return session;
}

function frame(seq: number, payloadBytes: number): OutgoingFrame {
  const payload = Buffer.alloc(payloadBytes, seq & 0xff);
  return new OutgoingFrame(prepareFrame(payload, { seq, captureTime: 1000 + seq, width: 4, height: 4, channels: 3, encoding: 'jpeg' }), 0);
}

/** Offers `f` as the fan-out would, and lets go of the publisher's hold at once. */
function offer(viewer: TcpViewer, f: OutgoingFrame, settled: Array<[number, boolean]> = []): void {
  const delivery: Delivery<OutgoingFrame> = { frame: f, settle: (taken) => settled.push([f.seq, taken]) };
  viewer.offer(delivery);
  f.release();
}

/** Decodes what reaches the receiver's end. */
function reader(socket: net.Socket) {
  const decoder = new MessageDecoder();
  const frames: Array<{ header: FrameHeader; payload: Buffer }> = [];
  socket.on('data', (chunk: Buffer) => {
    for (const m of decoder.push(chunk)) if (m.header.type === 'frame') frames.push({ header: m.header, payload: m.payload });
  });
  return frames;
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

const isReleased = async (f: OutgoingFrame) => Promise.race([f.released.then(() => true), new Promise<boolean>((resolve) => setImmediate(() => resolve(false)))]);

describe('TcpViewer', () => {
  it('writes the head and the shared payload as two writes inside cork(), and lets the payload go once written', async () => {
    const pair = await socketPair();
    try {
      const session = streamingSession();
      const viewer = new TcpViewer(1, 'r', 'peer', pair.sender, session, { ladder: [stream], adapt: false });
      const received = reader(pair.receiver);
      const calls: string[] = [];
      const writes: Buffer[] = [];
      const write = pair.sender.write.bind(pair.sender);
      jest.spyOn(pair.sender, 'cork').mockImplementation(() => void calls.push('cork'));
      const uncork = pair.sender.uncork.bind(pair.sender);
      jest.spyOn(pair.sender, 'uncork').mockImplementation(() => {
        calls.push('uncork');
        uncork();
      });
      jest.spyOn(pair.sender, 'write').mockImplementation(((chunk: Buffer, callback?: () => void) => {
        calls.push('write');
        writes.push(chunk);
        return write(chunk, callback);
      }) as typeof pair.sender.write);
      const f = frame(0, 1000);
      offer(viewer, f);
      expect(calls).toEqual(['cork', 'write', 'write', 'uncork']);
      expect(writes[0]).toEqual(f.prepared.headFor(0));
      expect(writes[1]).toBe(f.prepared.payload); // the very Buffer, not a copy
      await until(() => received.length === 1, 'the frame');
      expect(received[0]!.header).toMatchObject({ seq: 0, dropped: 0, payloadLength: 1000 });
      expect(received[0]!.payload.equals(f.prepared.payload)).toBe(true);
      await f.released;
      expect(session.window.inFlightBytes).toBe(f.bytesFor(0));
      expect([viewer.sent, viewer.dropped, viewer.bytesSent]).toEqual([1, 0, f.bytesFor(0)]);
    } finally {
      await pair.close();
    }
  });

  it('holds what the window does not admit, declares the frame a newer one replaced, and sends the newest on ack', async () => {
    const pair = await socketPair();
    try {
      // Before the first ack the window is 128 KiB: one 100 KB frame in flight leaves no room for another.
      const session = streamingSession();
      const viewer = new TcpViewer(1, 'r', 'peer', pair.sender, session, { ladder: [stream], adapt: false });
      const received = reader(pair.receiver);
      const settled: Array<[number, boolean]> = [];
      const frames = [frame(1, 100_000), frame(2, 100_000), frame(3, 100_000)];
      for (const f of frames) offer(viewer, f, settled);
      expect(settled).toEqual([[1, true], [2, false]]);
      expect(session.dropped).toBe(1);
      expect(await isReleased(frames[1]!)).toBe(true); // dropped: nobody needs its payload
      expect(await isReleased(frames[2]!)).toBe(false); // waiting in the slot
      await until(() => received.length === 1, 'frame 1');
      const events = session.receive({ type: 'ack', seq: 1, spanMs: 1, spanBytes: 100_000 }, 5);
      expect(events).toEqual([{ type: 'acked', seq: 1 }]);
      viewer.acked();
      await until(() => received.length === 2, 'frame 3');
      expect(received.map((r) => [r.header.seq, r.header.dropped])).toEqual([[1, 0], [3, 1]]);
      expect(settled).toEqual([[1, true], [2, false], [3, true]]);
      await Promise.all(frames.map((f) => f.released));
    } finally {
      await pair.close();
    }
  });

  it('stops writing when the socket refuses bytes, and writes the newest waiting frame on drain', async () => {
    const pair = await socketPair();
    try {
      // A window far larger than the socket buffers: here the socket is what pushes back.
      const session = streamingSession({ initialWindowBytes: 1e9 });
      const viewer = new TcpViewer(1, 'r', 'peer', pair.sender, session, { ladder: [stream], adapt: false });
      pair.receiver.pause();
      const sent: number[] = [];
      let seq = 0;
      while (viewer.socketBlockedForMs() === 0 && seq < 100) {
        offer(viewer, frame(seq, 4 * 1024 * 1024));
        sent.push(seq++);
      }
      expect(seq).toBeLessThan(100); // the socket refused bytes: write() returned false
      expect(pair.sender.writableLength).toBeGreaterThan(0);
      const waiting = [frame(seq, 1000), frame(seq + 1, 1000)];
      for (const f of waiting) offer(viewer, f);
      expect(viewer.sent).toBe(sent.length); // both wait: the socket has not drained
      expect(viewer.dropped).toBe(1); // the first was replaced by the second
      const received = reader(pair.receiver);
      pair.receiver.resume();
      await until(() => received.length === sent.length + 1, 'every written frame and the newest waiting one');
      expect(received.map((r) => r.header.seq)).toEqual([...sent, seq + 1]);
      expect(received.at(-1)!.header.dropped).toBe(1);
      expect(viewer.socketBlockedForMs()).toBe(0);
    } finally {
      await pair.close();
    }
  });

  it('lets go of frames still being written, and of the waiting one, when the connection goes', async () => {
    const pair = await socketPair();
    const session = streamingSession({ initialWindowBytes: 1e9 });
    const viewer = new TcpViewer(1, 'r', 'peer', pair.sender, session, { ladder: [stream], adapt: false });
    pair.receiver.pause();
    const frames: OutgoingFrame[] = [];
    while (viewer.socketBlockedForMs() === 0 && frames.length < 100) {
      frames.push(frame(frames.length, 4 * 1024 * 1024));
      offer(viewer, frames.at(-1)!);
    }
    frames.push(frame(frames.length, 1000));
    offer(viewer, frames.at(-1)!); // waits in the slot
    expect(await isReleased(frames.at(-1)!)).toBe(false);
    await pair.close();
    viewer.close();
    await Promise.all(frames.map((f) => f.released));
    expect(session.dropped).toBe(0); // a frame left when the session ended
  });

  it('names its rung, and logs a change at most every 2 s, the latest one always', async () => {
    const pair = await socketPair();
    try {
      let now = 0;
      const lines: string[] = [];
      const ladder = [{ width: 8, height: 8, quality: 80 }, { width: 4, height: 4, quality: 60 }];
      const session = streamingSession({ initialWindowBytes: 1e9 });
      const viewer = new TcpViewer(3, 'alice@host', 'peer', pair.sender, session, { ladder, adapt: true, log: (l) => lines.push(l), now: () => now });
      const onRung = (seq: number, rung: number) => {
        const { width, height } = ladder[rung]!;
        const payload = Buffer.alloc(10);
        offer(viewer, new OutgoingFrame(prepareFrame(payload, { seq, captureTime: 1, width, height, channels: 3, encoding: 'jpeg', rung }), rung));
      };
      expect(viewer.describeRung()).toBe('rung 0 (8x8 q80)');
      expect(viewer.describeRung(1)).toBe('rung 1 (4x4 q60)');
      onRung(0, 0);
      expect(lines).toEqual([]); // rung 0 from the start: nothing to say
      now = 100;
      onRung(1, 1);
      expect(lines).toEqual(['viewer #3 (alice@host) now on rung 1 (4x4 q60): link not measured yet, 0 frames dropped so far']);
      now = 600;
      onRung(2, 0); // too soon after the last line: held back
      viewer.flushRungLog(now);
      expect(lines).toHaveLength(1);
      now = 2100;
      viewer.flushRungLog(now);
      expect(lines.at(-1)).toBe('viewer #3 (alice@host) now on rung 0 (8x8 q80): link not measured yet, 0 frames dropped so far');
      now = 2200;
      onRung(3, 1);
      onRung(4, 0); // and back before the interval is over: nothing changed since the last line
      now = 5000;
      viewer.flushRungLog(now);
      expect(lines).toHaveLength(2);
      expect(viewer.rung).toBe(0);
    } finally {
      await pair.close();
    }
  });
});
