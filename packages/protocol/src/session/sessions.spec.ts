// Both sides of the session, socket-free: messages go from one state machine to the other as
// values, the way nats.js tests its transport-free core.
import { receiverProof, senderProof } from '../auth';
import { frameHeader } from '../encoder';
import type { FrameHeader, Header, StreamDescription } from '../schema';
import { ReceiverSession, type ReceiverSessionEvent } from './receiver-session';
import { SenderSession, type SenderSessionEvent } from './sender-session';

const stream: StreamDescription = {
  width: 4,
  height: 2,
  fps: 30,
  pixelFormat: 'bgr24',
  encoding: 'jpeg',
  quality: 80,
  source: 'test',
  rungs: [{ width: 2, height: 1, quality: 60 }],
};
const NONCE_S = 'S'.repeat(43) + '=';
const NONCE_R = 'R'.repeat(43) + '=';

const sent = (events: Array<SenderSessionEvent | ReceiverSessionEvent>): Header[] =>
  events.flatMap((e) => (e.type === 'send' ? [e.header] : []));

function frame(seq: number, dropped: number, patch: Partial<FrameHeader> = {}): { header: FrameHeader; payload: Buffer } {
  const payload = Buffer.from([0xff, 0xd8, seq & 0xff, 0xff, 0xd9]);
  return { header: { ...frameHeader(payload, { seq, captureTime: 1000 + seq, width: 4, height: 2, channels: 3, encoding: 'jpeg', dropped }), ...patch }, payload };
}

/** Runs the handshake between a fresh pair and returns both, streaming. */
function connected(secret?: string) {
  const sender = new SenderSession({ stream, name: 'cam', now: 0, nonce: NONCE_S, ...(secret ? { secret } : {}) });
  const receiver = new ReceiverSession({ name: 'viewer', nonce: NONCE_R, ...(secret ? { secret } : {}) });
  let toSender: Header[] = [receiver.hello()];
  const toReceiver: Header[] = [];
  const receiverEvents: ReceiverSessionEvent[] = [];
  while (toSender.length > 0) {
    const fromSender = toSender.flatMap((h) => sent(sender.receive(h, 1)));
    toReceiver.push(...fromSender);
    const events = fromSender.flatMap((h) => receiver.receive({ header: h, payload: Buffer.alloc(0) }));
    receiverEvents.push(...events);
    toSender = sent(events);
  }
  return { sender, receiver, toReceiver, receiverEvents };
}

describe('handshake', () => {
  it('without a secret: hello, hello with the stream; the receiver learns the rungs and the frame limit', () => {
    const { sender, receiver, toReceiver, receiverEvents } = connected();
    expect(sender.streaming && receiver.streaming).toBe(true);
    expect(toReceiver).toEqual([{ type: 'hello', protocol: 'camstream', version: 2, role: 'sender', name: 'cam', stream }]);
    expect(receiverEvents).toEqual([
      expect.objectContaining({
        type: 'stream',
        senderName: 'cam',
        rungs: [{ width: 4, height: 2, quality: 80 }, { width: 2, height: 1, quality: 60 }],
        maxFrameBytes: 2 * 4 * 2 * 3 + 64 * 1024,
      }),
    ]);
  });

  it('with a secret: challenge, auth, then the hello carries the sender proof', () => {
    const { sender, receiver, toReceiver } = connected('s3cretvalue');
    expect(sender.streaming && receiver.streaming).toBe(true);
    expect(toReceiver.map((h) => h.type)).toEqual(['challenge', 'hello']);
    expect(toReceiver[1]).toMatchObject({ proof: senderProof('s3cretvalue', NONCE_S, NONCE_R) });
  });

  it('the sender refuses a wrong secret with ERR_AUTH and describes no stream', () => {
    const sender = new SenderSession({ stream, now: 0, secret: 'right secret', nonce: NONCE_S });
    const receiver = new ReceiverSession({ name: 'viewer', secret: 'wrong secret', nonce: NONCE_R });
    const challenge = sent(sender.receive(receiver.hello(), 0));
    const auth = sent(receiver.receive({ header: challenge[0]!, payload: Buffer.alloc(0) }));
    const events = sender.receive(auth[0]!, 0);
    expect(events).toEqual([
      { type: 'send', header: { type: 'error', code: 'ERR_AUTH', reason: 'authentication failed: wrong shared secret' } },
      { type: 'closed', end: expect.objectContaining({ kind: 'refused' }) },
    ]);
    expect(sender.closed).toBe(true);
  });

  it('the sender refuses a receiver without a nonce when it has a secret', () => {
    const sender = new SenderSession({ stream, now: 0, secret: 'right secret' });
    const events = sender.receive(new ReceiverSession({ name: 'x' }).hello(), 0);
    expect(sent(events)).toEqual([{ type: 'error', code: 'ERR_AUTH', reason: expect.stringContaining('offered none') }]);
  });

  it('a receiver with a secret refuses a sender that skips the challenge (ERR_AUTH, sent to the sender)', () => {
    const receiver = new ReceiverSession({ name: 'viewer', secret: 'my secret', nonce: NONCE_R });
    const hello = sent(new SenderSession({ stream, now: 0 }).receive(new ReceiverSession({ name: 'x' }).hello(), 0))[0]!;
    const events = receiver.receive({ header: hello, payload: Buffer.alloc(0) });
    expect(sent(events)).toEqual([{ type: 'error', code: 'ERR_AUTH', reason: expect.stringContaining('did not ask for the shared secret') }]);
    expect(events.at(-1)).toMatchObject({ type: 'end', end: { kind: 'failed' } });
  });

  it('a receiver with a secret refuses a wrong proof', () => {
    const receiver = new ReceiverSession({ name: 'viewer', secret: 'my secret', nonce: NONCE_R });
    receiver.receive({ header: { type: 'challenge', method: 'hmac-sha256', nonce: NONCE_S }, payload: Buffer.alloc(0) });
    const proof = senderProof('another secret', NONCE_S, NONCE_R);
    const events = receiver.receive({ header: { type: 'hello', protocol: 'camstream', version: 2, role: 'sender', stream, proof }, payload: Buffer.alloc(0) });
    expect(sent(events)).toEqual([{ type: 'error', code: 'ERR_AUTH', reason: expect.stringContaining('proof of the shared secret is wrong') }]);
  });

  it('a receiver without a secret cannot answer a challenge', () => {
    const receiver = new ReceiverSession({ name: 'viewer' });
    const events = receiver.receive({ header: { type: 'challenge', method: 'hmac-sha256', nonce: NONCE_S }, payload: Buffer.alloc(0) });
    expect(sent(events)).toEqual([{ type: 'error', code: 'ERR_AUTH', reason: expect.stringContaining('requires a shared secret') }]);
  });

  it('the receiver refuses a stream larger than its limit, with both sizes in the reason', () => {
    const receiver = new ReceiverSession({ name: 'viewer', maxSize: { width: 1920, height: 1080 } });
    const big: StreamDescription = { ...stream, width: 16000, height: 16000, rungs: [] };
    const events = receiver.receive({ header: { type: 'hello', protocol: 'camstream', version: 2, role: 'sender', stream: big }, payload: Buffer.alloc(0) });
    expect(sent(events)).toEqual([
      { type: 'error', code: 'ERR_STREAM_TOO_LARGE', reason: 'the sender announced a 16000x16000 stream, larger than this receiver accepts (1920x1080; see --max-size)' },
    ]);
    expect(events.some((e) => e.type === 'stream')).toBe(false);
  });

  it('the sender refuses a first message that is not a receiver hello, and checks the deadline', () => {
    expect(sent(new SenderSession({ stream, now: 0 }).receive({ type: 'bye', reason: 'x' }, 0))).toEqual([
      { type: 'error', code: 'ERR_HANDSHAKE', reason: "expected a hello from a receiver, got 'bye' message" },
    ]);
    const slow = new SenderSession({ stream, now: 1000, handshakeTimeoutMs: 5000 });
    expect(slow.tick(5999)).toEqual([]);
    expect(sent(slow.tick(6000))).toEqual([{ type: 'error', code: 'ERR_HANDSHAKE_TIMEOUT', reason: 'the handshake did not finish within 5000 ms' }]);
    expect(slow.tick(7000)).toEqual([]);
  });

  it('the sender hears an error from the receiver and never answers it with an error', () => {
    const sender = new SenderSession({ stream, now: 0 });
    expect(sender.receive({ type: 'error', code: 'ERR_X', reason: 'bad' }, 0)).toEqual([
      { type: 'closed', end: { kind: 'peer-error', code: 'ERR_X', reason: 'bad' } },
    ]);
  });

  it('proofs use the documented labels', () => {
    expect(receiverProof('k', 'A', 'B')).toBe('783915ff18bfd510d478fc244495696a54abdf41940e31237b54ae0e5e4e6567');
  });
});

describe('streaming', () => {
  it('every frame is acknowledged with its arrival, and the ack opens the sender window', () => {
    const { sender, receiver } = connected();
    expect(sender.canSend(100)).toBe(true);
    const dropped = sender.frameSent(0, 100, 10);
    expect(sender.canSend(200_000)).toBe(false); // beyond the initial window while one is in flight
    const f = frame(0, dropped);
    const events = receiver.receive({ ...f, arrival: { spanMs: 1.23456, spanBytes: 90 } });
    expect(events).toEqual([
      { type: 'send', header: { type: 'ack', seq: 0, spanMs: 1.235, spanBytes: 90 } },
      { type: 'frame', header: f.header, payload: f.payload, rung: 0, declaredDrops: 0, undeclaredGap: 0 },
    ]);
    expect(sender.receive(sent(events)[0]!, 20)).toEqual([{ type: 'acked', seq: 0 }]);
    expect(sender.canSend(200_000)).toBe(true);
  });

  it('declared drops travel in the next frame header and the receiver counts them as such', () => {
    const { sender, receiver } = connected();
    receiver.receive(frame(0, sender.frameSent(0, 10, 0)));
    sender.frameDropped();
    sender.frameDropped();
    const events = receiver.receive(frame(3, sender.frameSent(3, 10, 1)));
    expect(events[1]).toMatchObject({ type: 'frame', declaredDrops: 2, undeclaredGap: 0 });
    expect(receiver.receive(frame(6, 2))[1]).toMatchObject({ type: 'frame', declaredDrops: 0, undeclaredGap: 2 });
  });

  it('a frame of a lower rung is accepted at the rung size, and refused at any other', () => {
    const { receiver } = connected();
    expect(receiver.receive(frame(0, 0, { width: 2, height: 1, rung: 1 }))[1]).toMatchObject({ type: 'frame', rung: 1 });
    const events = receiver.receive(frame(1, 0, { width: 4, height: 2, rung: 1 }));
    expect(sent(events)).toEqual([
      { type: 'error', code: 'ERR_STREAM_MISMATCH', reason: 'frame 1 is 4x2x3 jpeg, but rung 1 was announced as 2x1x3 jpeg' },
    ]);
  });

  it('refuses frames of another encoding, another channel count or an unannounced rung', () => {
    for (const [patch, reason] of [
      [{ encoding: 'png' }, 'frame 0 is 4x2x3 png, but the stream was announced as 4x2x3 jpeg'],
      [{ channels: 1 }, 'frame 0 is 4x2x1 jpeg, but the stream was announced as 4x2x3 jpeg'],
      [{ rung: 2 }, 'frame 0 is on rung 2, but the stream announced 1 lower rung(s)'],
    ] as const) {
      const { receiver } = connected();
      expect(sent(receiver.receive(frame(0, 0, patch)))).toEqual([{ type: 'error', code: 'ERR_STREAM_MISMATCH', reason }]);
    }
  });

  it('refuses a drop counter that rises by more than the frames missing (ERR_OUT_OF_ORDER)', () => {
    const { receiver } = connected();
    receiver.receive(frame(0, 0));
    expect(sent(receiver.receive(frame(2, 5)))).toEqual([
      { type: 'error', code: 'ERR_OUT_OF_ORDER', reason: 'frame 2 declares 5 dropped frame(s) since frame 0, but only 1 are missing' },
    ]);
  });

  it('the sender refuses an ack for a frame it never sent, and anything but ack or bye', () => {
    const a = connected();
    expect(sent(a.sender.receive({ type: 'ack', seq: 9, spanMs: 0, spanBytes: 0 }, 5))).toEqual([
      { type: 'error', code: 'ERR_UNEXPECTED', reason: 'ack for frame 9, which was never sent' },
    ]);
    const b = connected();
    expect(sent(b.sender.receive({ type: 'ping', time: 1 }, 5))).toEqual([
      { type: 'error', code: 'ERR_UNEXPECTED', reason: "unexpected 'ping' message after the handshake" },
    ]);
  });

  it('pings an idle receiver, and cuts off one that stopped acknowledging', () => {
    const sender = new SenderSession({ stream, now: 0, pingIntervalMs: 2000, stallTimeoutMs: 30_000, wallClock: () => 1234 });
    sender.receive(new ReceiverSession({ name: 'x' }).hello(), 0);
    expect(sender.tick(1999)).toEqual([]);
    expect(sent(sender.tick(2000))).toEqual([{ type: 'ping', time: 1234 }]);
    sender.frameSent(0, 10, 2500);
    expect(sent(sender.tick(32_500))).toEqual([{ type: 'ping', time: 1234 }]);
    expect(sent(sender.tick(32_501))).toEqual([
      { type: 'error', code: 'ERR_STALLED', reason: 'no acknowledgement for 30.0 s: the receiver stopped reading' },
    ]);
  });

  it('bye from either side ends the session in order', () => {
    const a = connected();
    expect(a.sender.receive({ type: 'bye', reason: 'done' }, 5)).toEqual([{ type: 'closed', end: { kind: 'bye', reason: 'done' } }]);
    const b = connected();
    const leaving = b.sender.leave('sender shutting down');
    expect(sent(leaving)).toEqual([{ type: 'bye', reason: 'sender shutting down' }]);
    expect(b.receiver.receive({ header: sent(leaving)[0]!, payload: Buffer.alloc(0) })).toEqual([
      { type: 'end', end: { kind: 'bye', reason: 'sender shutting down' } },
    ]);
    expect(new SenderSession({ stream, now: 0 }).leave('x')).toEqual([{ type: 'closed', end: { kind: 'left', reason: 'x' } }]);
  });

  it('a closed session ignores everything', () => {
    const { sender, receiver } = connected();
    receiver.leave('bye');
    expect(receiver.receive(frame(0, 0))).toEqual([]);
    sender.leave('bye');
    expect(sender.receive({ type: 'ack', seq: 0, spanMs: 0, spanBytes: 0 }, 1)).toEqual([]);
    expect(sender.tick(1e9)).toEqual([]);
  });
});
