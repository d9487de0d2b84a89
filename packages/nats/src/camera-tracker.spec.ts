import { encodeMessage, prepareFrame, PROTOCOL_NAME, PROTOCOL_VERSION, type StreamDescription } from '@camstream/protocol';
import { CameraTracker, type CameraTrackerOptions, type FrameVerdict, type IncomingMessage } from './camera-tracker';
import { signMessage } from './signing';
import { frameMessageBytes } from './wire';

const STREAM: StreamDescription = { width: 2, height: 1, fps: 30, pixelFormat: 'bgr24', encoding: 'raw-bgr' };
const RUN_1 = '1700000000000-00000000000000a1';
const RUN_2 = '1700000100000-00000000000000b2';
const FRAMES = 'camstream.cam.frames';
const HELLO = 'camstream.cam.hello';
const DESCRIBE = 'camstream.cam.describe';

interface Envelope {
  epoch?: string;
  reconnects?: string;
  secret?: string;
  subject?: string;
  nonce?: string;
  at?: number;
  signature?: string;
}

function signed(subject: string, body: Uint8Array, envelope: Envelope): IncomingMessage {
  const epoch = 'epoch' in envelope ? envelope.epoch : RUN_1;
  const reconnects = envelope.reconnects ?? '0';
  const signature =
    envelope.signature ??
    (envelope.secret === undefined ? undefined : signMessage(envelope.secret, { subject, epoch: epoch ?? '', reconnects, nonce: envelope.nonce ?? '', message: body }));
  return { subject, body, epoch, reconnects, signature, arrivedAt: envelope.at ?? 0 };
}

function frameBody(seq: number, dropped = 0, stream: StreamDescription = STREAM): Buffer {
  const pixels = Buffer.alloc(stream.width * stream.height * 3, seq % 256);
  return frameMessageBytes(prepareFrame(pixels, { seq, captureTime: 1, width: stream.width, height: stream.height, channels: 3, encoding: 'raw-bgr' }), dropped);
}

function frame(seq: number, dropped = 0, envelope: Envelope = {}): IncomingMessage {
  return signed(envelope.subject ?? FRAMES, frameBody(seq, dropped), envelope);
}

function helloBody(stream: StreamDescription = STREAM): Buffer {
  return encodeMessage({ type: 'hello', protocol: PROTOCOL_NAME, version: PROTOCOL_VERSION, role: 'sender', name: 'porch', stream }).head;
}

function hello(envelope: Envelope = {}, stream: StreamDescription = STREAM): IncomingMessage {
  return signed(envelope.subject ?? HELLO, helloBody(stream), envelope);
}

function tracker(options: Partial<CameraTrackerOptions> = {}): CameraTracker {
  return new CameraTracker({ camera: 'cam', maxMessageBytes: 1024 * 1024, ...options });
}

function accepted(verdict: FrameVerdict) {
  if (verdict.kind !== 'accepted') throw new Error(`expected an accepted frame, got ${JSON.stringify(verdict)}`);
  return verdict;
}

describe('CameraTracker: following a sender run', () => {
  it('checks nothing before the announcement (frames are unannounced), then follows the run it names', () => {
    const t = tracker();
    expect(t.frame(frame(0))).toEqual({ kind: 'unannounced', epoch: RUN_1 });
    expect(t.announcement(hello())).toEqual({ kind: 'adopted', epoch: RUN_1, stream: STREAM, senderName: 'porch', restarted: false });
    expect(t.announcement(hello())).toEqual({ kind: 'current' });
    expect(accepted(t.frame(frame(1))).frame).toMatchObject({ camera: 'cam', epoch: RUN_1, rung: 0, declaredDrops: 0, undeclaredGap: 0, lostInTransport: 0 });
    expect(t.stats).toMatchObject({ epoch: RUN_1, senderName: 'porch', stream: STREAM, senderRuns: 1, frames: 1, lastSeq: 1, unannounced: 1 });
  });

  it('moves to a newer run from its announcement; its frames number afresh and the restart is an outage', () => {
    const t = tracker();
    t.announcement(hello());
    accepted(t.frame(frame(41, 0, { at: 0 })));
    expect(t.frame(frame(0, 0, { epoch: RUN_2, at: 10 }))).toEqual({ kind: 'unannounced', epoch: RUN_2 });
    expect(t.announcement(hello({ epoch: RUN_2 }))).toMatchObject({ kind: 'adopted', epoch: RUN_2, restarted: true });
    const first = accepted(t.frame(frame(0, 0, { epoch: RUN_2, at: 40 })));
    expect(first.outage).toEqual({ cause: 'sender-restarted', startedAt: 0, endedAt: 40, lengthMs: 40, lostFrames: 0, declaredDrops: 0 });
    expect(t.stats).toMatchObject({ senderRuns: 2, frames: 2, lastSeq: 0, undeclaredGaps: 0 });
  });

  it('refuses an older run, its announcement or its frames (a replay, or a sender whose clock went back: describe to tell)', () => {
    const t = tracker();
    t.announcement(hello({ epoch: RUN_2 }));
    expect(t.announcement(hello({ epoch: RUN_1 }))).toEqual({
      kind: 'refused',
      reason: 'stale-epoch',
      detail: `announcement of sender run ${RUN_1}, older than the run followed (${RUN_2})`,
    });
    expect(t.frame(frame(100, 0, { epoch: RUN_1 }))).toEqual({
      kind: 'refused',
      reason: 'stale-epoch',
      detail: `frame of sender run ${RUN_1}, older than the run followed (${RUN_2})`,
      describe: true,
    });
    // A describe reply answers this receiver's own nonce: it is fresh, so it is believed.
    expect(t.announcement(hello({ epoch: RUN_1, subject: DESCRIBE }), 'nonce')).toMatchObject({ kind: 'adopted', epoch: RUN_1 });
    expect(t.stats.refused).toEqual({ unsigned: 0, badSignature: 0, replayed: 0, staleEpoch: 2 });
  });

  it('refuses a frame that is not newer than the last one of the run (a replay, or a duplicate)', () => {
    const t = tracker();
    t.announcement(hello());
    accepted(t.frame(frame(5)));
    expect(t.frame(frame(5))).toEqual({ kind: 'refused', reason: 'replayed', detail: `frame 5 is not newer than frame 5 of sender run ${RUN_1}`, describe: false });
    expect(t.frame(frame(2))).toMatchObject({ kind: 'refused', reason: 'replayed' });
    accepted(t.frame(frame(6)));
    expect(t.stats).toMatchObject({ frames: 2, refused: { replayed: 2 }, undeclaredGaps: 0 });
  });
});

describe('CameraTracker: what the sequence numbers say', () => {
  it('tells declared drops from undeclared gaps', () => {
    const t = tracker();
    t.announcement(hello());
    accepted(t.frame(frame(10, 4, { at: 0 })));
    expect(accepted(t.frame(frame(13, 6, { at: 33 }))).frame).toMatchObject({ declaredDrops: 2, undeclaredGap: 0, lostInTransport: 0 });
    const gap = accepted(t.frame(frame(16, 6, { at: 66 })));
    expect(gap.frame).toMatchObject({ declaredDrops: 0, undeclaredGap: 2, lostInTransport: 0 });
    expect(gap.outage).toBeUndefined();
    expect(t.stats).toMatchObject({ frames: 3, declaredDrops: 2, undeclaredGaps: 2, lostInTransport: 0, outages: { count: 0 } });
  });

  it("counts frames missing across the sender's reconnect as lost in transport, and reports the outage", () => {
    const t = tracker();
    t.announcement(hello());
    accepted(t.frame(frame(0, 0, { at: 1000 })));
    // Two frames died with the old connection; three more the publisher dropped while it was down.
    const after = accepted(t.frame(frame(6, 3, { reconnects: '1', at: 1120 })));
    expect(after.frame).toMatchObject({ declaredDrops: 3, lostInTransport: 2, undeclaredGap: 0 });
    expect(after.outage).toEqual({ cause: 'sender-reconnected', startedAt: 1000, endedAt: 1120, lengthMs: 120, lostFrames: 2, declaredDrops: 3 });
    expect(t.stats).toMatchObject({ lostInTransport: 2, undeclaredGaps: 0, declaredDrops: 3, outages: { count: 1, totalMs: 120, longestMs: 120 } });
  });

  it("counts frames missing across this receiver's own reconnect as lost in transport", () => {
    const t = tracker();
    t.announcement(hello());
    accepted(t.frame(frame(0, 0, { at: 0 })));
    t.linkInterrupted();
    const after = accepted(t.frame(frame(3, 0, { at: 50 })));
    expect(after.frame).toMatchObject({ lostInTransport: 2, undeclaredGap: 0 });
    expect(after.outage?.cause).toBe('receiver-reconnected');
    // Once: the next gap is a gap again.
    expect(accepted(t.frame(frame(5, 0, { at: 80 }))).frame).toMatchObject({ lostInTransport: 0, undeclaredGap: 1 });
  });

  it('reports silence longer than 5 frame intervals (at least 500 ms) as an outage, when it begins and when it ends', () => {
    const t = tracker();
    t.announcement(hello({}, { ...STREAM, fps: 5 }));
    expect(t.outageAfterMs).toBe(1000);
    accepted(t.frame(frame(0, 0, { at: 0 })));
    expect(t.checkOutage(1000)).toBeUndefined();
    expect(t.checkOutage(1001)).toEqual({ since: 0 });
    expect(t.checkOutage(1500)).toBeUndefined();
    expect(t.stats.outages.current).toEqual({ since: 0 });
    const back = accepted(t.frame(frame(9, 0, { at: 2500 })));
    expect(back.outage).toEqual({ cause: 'silence', startedAt: 0, endedAt: 2500, lengthMs: 2500, lostFrames: 8, declaredDrops: 0 });
    expect(t.stats.outages).toMatchObject({ count: 1, current: undefined });
    expect(t.stats).toMatchObject({ lostInTransport: 8, undeclaredGaps: 0 });
    expect(tracker().outageAfterMs).toBe(2000);
    const fast = tracker();
    fast.announcement(hello());
    expect(fast.outageAfterMs).toBe(500);
    expect(tracker({ outageAfterMs: 120 }).outageAfterMs).toBe(120);
  });
});

describe('CameraTracker: bytes and contents', () => {
  function corruptCode(t: CameraTracker, message: IncomingMessage): string {
    const verdict = t.frame(message);
    if (verdict.kind !== 'corrupt') throw new Error(`expected corrupt, got ${verdict.kind}`);
    return `${verdict.error.code}: ${verdict.error.message}`;
  }

  it('counts as corrupt what the TCP receiver would refuse, and goes on with the next good frame', () => {
    const t = tracker();
    t.announcement(hello());
    accepted(t.frame(frame(0)));
    const flipped = frameBody(1);
    flipped[flipped.length - 1]! ^= 1;
    expect(corruptCode(t, signed(FRAMES, flipped, {}))).toMatch(/^ERR_CHECKSUM: /);
    expect(corruptCode(t, signed(FRAMES, frameBody(1).subarray(0, 20), {}))).toBe('ERR_LENGTH_MISMATCH: the NATS message ends inside its camstream message (20 bytes, not a whole message)');
    expect(corruptCode(t, signed(FRAMES, Buffer.concat([frameBody(1), frameBody(2)]), {}))).toMatch(/^ERR_LENGTH_MISMATCH: the NATS message holds more than one camstream message/);
    expect(corruptCode(t, signed(FRAMES, frameBody(1, 0, { ...STREAM, width: 1 }), {}))).toBe('ERR_STREAM_MISMATCH: frame 1 is 1x1x3 raw-bgr, but the stream was announced as 2x1x3 raw-bgr');
    expect(corruptCode(t, signed(FRAMES, helloBody(), {}))).toBe("ERR_UNEXPECTED: expected a frame, got a 'hello' message");
    expect(corruptCode(t, frame(1, 0, { epoch: undefined }))).toBe('ERR_SCHEMA: frame without a valid Camstream-Epoch header (undefined)');
    expect(corruptCode(t, frame(3, 5))).toBe('ERR_OUT_OF_ORDER: frame 3 declares 5 dropped frame(s) since frame 0, but only 2 are missing');
    accepted(t.frame(frame(1)));
    expect(t.stats).toMatchObject({ frames: 2, corrupt: 7, undeclaredGaps: 0 });
    expect(t.stats.lastProblem).toMatch(/declares 5 dropped/);
  });

  it('refuses an announcement it cannot accept', () => {
    const t = tracker({ maxSize: { width: 1920, height: 1080 } });
    expect(t.announcement(hello({}, { ...STREAM, width: 3840, height: 2160 }))).toMatchObject({
      kind: 'corrupt',
      error: { code: 'ERR_STREAM_TOO_LARGE', message: 'the sender announced a 3840x2160 stream, larger than this receiver accepts (1920x1080)' },
    });
    expect(t.announcement(signed(HELLO, frameBody(0), {}))).toMatchObject({ kind: 'corrupt', error: { code: 'ERR_UNEXPECTED' } });
    expect(t.announcement(hello({ epoch: 'yesterday' }))).toMatchObject({ kind: 'corrupt', error: { code: 'ERR_SCHEMA' } });
    expect(t.following).toBe(false);
  });
});

describe('CameraTracker with a shared secret', () => {
  const secret = 'k';

  it('needs a describe reply (bound to its nonce) to start following; an unsolicited announcement may be a replay', () => {
    const t = tracker({ secret });
    expect(t.announcement(hello({ secret }))).toEqual({ kind: 'describe' });
    expect(t.following).toBe(false);
    // A reply signed for another request's nonce is refused.
    expect(t.announcement(hello({ secret, subject: DESCRIBE, nonce: 'theirs' }), 'mine')).toMatchObject({ kind: 'refused', reason: 'bad-signature' });
    expect(t.announcement(hello({ secret, subject: DESCRIBE, nonce: 'mine' }), 'mine')).toMatchObject({ kind: 'adopted', epoch: RUN_1 });
    // Following a run, a signed announcement of a newer one is believed: only the secret's holder can make one.
    expect(t.announcement(hello({ secret, epoch: RUN_2 }))).toMatchObject({ kind: 'adopted', epoch: RUN_2, restarted: true });
  });

  it('refuses unsigned and wrongly signed frames, and frames moved to another camera', () => {
    const t = tracker({ secret });
    t.announcement(hello({ secret, subject: DESCRIBE, nonce: 'n' }), 'n');
    accepted(t.frame(frame(0, 0, { secret })));
    expect(t.frame(frame(1))).toEqual({ kind: 'refused', reason: 'unsigned', detail: 'unsigned message on camstream.cam.frames: this receiver requires signed messages', describe: false });
    expect(t.frame(frame(1, 0, { secret: 'other' }))).toMatchObject({ kind: 'refused', reason: 'bad-signature' });
    expect(t.frame(frame(1, 0, { signature: 'not hex' }))).toMatchObject({ kind: 'refused', reason: 'bad-signature' });
    // Signed for camera "other", published on this camera's subject.
    const moved = frame(1, 0, { secret, subject: 'camstream.other.frames' });
    expect(t.frame({ ...moved, subject: FRAMES })).toMatchObject({ kind: 'refused', reason: 'bad-signature' });
    // The reconnect count is signed too.
    const relabelled = frame(1, 0, { secret });
    expect(t.frame({ ...relabelled, reconnects: '7' })).toMatchObject({ kind: 'refused', reason: 'bad-signature' });
    accepted(t.frame(frame(1, 0, { secret })));
    expect(t.stats).toMatchObject({ frames: 2, refused: { unsigned: 1, badSignature: 4, replayed: 0, staleEpoch: 0 } });
  });
});

describe('CameraTracker counts', () => {
  it('hands out copies of its counts', () => {
    const t = tracker();
    const before = t.stats;
    before.refused.unsigned = 99;
    before.outages.recent.push({ cause: 'silence', startedAt: 0, endedAt: 1, lengthMs: 1, lostFrames: 0, declaredDrops: 0 });
    expect(t.stats.refused.unsigned).toBe(0);
    expect(t.stats.outages.recent).toEqual([]);
  });
});
