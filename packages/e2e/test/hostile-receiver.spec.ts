import type net from 'node:net';
import fc from 'fast-check';
import { crc32, frameHeader, type FrameHeader, type Header, type StreamDescription } from '@camstream/protocol';
import { MessageDecoder, SequenceCheck } from '@camstream/protocol';
import { runSession, type SessionEnd } from '@camstream/receiver';
import { FakeCamera, renderFakeFrame } from '@camstream/testkit';
import {
  codec,
  FakeSender,
  frameMessage,
  garbage,
  lengthPrefix,
  pump,
  rawExchange,
  rawMessage,
  receiverHello,
  senderHello,
  startReceiver,
  startServerWith,
  until,
  writeAll,
} from './harness';

// Fake senders, written with net and the protocol encoder (or by hand, byte by byte), against the
// receiver's real session (runSession) and its reconnect loop (receive): every hostile input
// ends the connection with an error that says what was wrong, is counted, and is survived.

const JPEG_STREAM: StreamDescription = { width: 64, height: 48, fps: 30, pixelFormat: 'bgr24', encoding: 'jpeg' };
const RAW_STREAM: StreamDescription = { width: 4, height: 4, fps: 30, pixelFormat: 'bgr24', encoding: 'raw-bgr' };
/** What the receiver allows a 64x48 JPEG frame (2 * raw + 64 KiB, see session.ts). */
const JPEG_FRAME_LIMIT = 2 * 64 * 48 * 3 + 64 * 1024;
/** Loose on purpose: allocating what one of these senders announces would blow far past it. */
const MEMORY_GROWTH_LIMIT_MB = 200;

let jpeg: Buffer;

beforeAll(async () => {
  jpeg = await codec.encode(renderFakeFrame(0, 64, 48), 'jpeg', { quality: 80 });
});

const jpegFrame = (seq: number, patch: Partial<FrameHeader> = {}) =>
  frameMessage(jpeg, { seq, captureTime: Date.now(), width: 64, height: 48, channels: 3, encoding: 'jpeg' }, patch);

/** A frame header announcing `payloadLength` bytes, followed by only `sent` of them. */
function oversizedFrame(payloadLength: number, sent: number): Buffer {
  const header = { type: 'frame', seq: 0, captureTime: Date.now(), width: 64, height: 48, channels: 3, encoding: 'jpeg', payloadLength, crc32: 0, dropped: 0 };
  const headerBytes = Buffer.from(JSON.stringify(header));
  return rawMessage({ header: headerBytes, payload: Buffer.alloc(sent, 0xaa), messageLength: 4 + headerBytes.length + payloadLength });
}

interface HostileCase {
  name: string;
  /** The stream the fake sender announces in its hello; none: it never says hello. */
  stream?: StreamDescription;
  /** What it sends after its hello (or instead of it). */
  bytes: () => Buffer[];
  /** Send the hello and the bytes in one write, so they reach the receiver in one read. */
  together?: boolean;
  /** Close after sending (default: keep the connection open and let the receiver decide). */
  close?: boolean;
  error: RegExp;
  /** The code of the `error` the receiver sends back before closing; none: it has nothing to say (the sender is gone or mute). */
  code?: string | RegExp;
  /** Whether the receiver counts it as corrupt bytes (stats.corrupt), rather than a network failure. */
  corrupt: boolean;
}

const cases: HostileCase[] = [
  {
    name: 'random garbage instead of a hello',
    bytes: () => [garbage(4096)],
    // 8 random bytes as a length are all but certainly over the 64 MiB limit: no camstream sender sends that.
    error: /^the peer at 127\.0\.0\.1:\d+ is not a camstream sender: it sent ".+"$/,
    code: /^ERR_(TOO_LARGE|LENGTH_MISMATCH)$/,
    corrupt: false,
  },
  {
    name: 'random garbage after its hello',
    stream: JPEG_STREAM,
    bytes: () => [garbage(4096)],
    error: /exceeds the limit|shorter than/,
    code: /^ERR_(TOO_LARGE|LENGTH_MISMATCH)$/,
    corrupt: true,
  },
  {
    name: 'a length prefix of 2^64 - 1',
    stream: JPEG_STREAM,
    bytes: () => [Buffer.alloc(8, 0xff)],
    error: /message length 18446744073709551615 exceeds the limit of 67108864 bytes/,
    code: 'ERR_TOO_LARGE',
    corrupt: true,
  },
  {
    name: 'a 1 GB header announced (N = 1 GB + 4, H = 1 GB), then a few KB',
    stream: JPEG_STREAM,
    bytes: () => [lengthPrefix(2 ** 30 + 4, 2 ** 30), Buffer.alloc(4096, 0x7b)],
    error: /message length 1073741828 exceeds the limit of 67108864 bytes/,
    code: 'ERR_TOO_LARGE',
    corrupt: true,
  },
  {
    name: 'a 1 GB header length inside a small message',
    stream: JPEG_STREAM,
    bytes: () => [lengthPrefix(1000, 2 ** 30), Buffer.alloc(988, 0x7b)],
    error: /header length 1073741824 exceeds the limit of 65536 bytes/,
    code: 'ERR_TOO_LARGE',
    corrupt: true,
  },
  {
    name: 'a 1 MB frame instead of a hello',
    bytes: () => [frameMessage(Buffer.alloc(1_000_000, 0x55), { seq: 0, captureTime: 1, width: 64, height: 48, channels: 3, encoding: 'jpeg' })],
    error: /the sender sent more than 131096 bytes before its hello/,
    code: 'ERR_TOO_LARGE',
    corrupt: true,
  },
  {
    name: 'a truncated frame, then close',
    stream: JPEG_STREAM,
    bytes: () => [jpegFrame(0), jpegFrame(1).subarray(0, 300)],
    close: true,
    error: /^the sender closed the connection in the middle of a message$/,
    corrupt: false,
  },
  {
    name: 'a payload shorter than its header says',
    stream: JPEG_STREAM,
    bytes: () => {
      const header = frameHeader(jpeg, { seq: 0, captureTime: 1, width: 64, height: 48, channels: 3, encoding: 'jpeg' });
      return [rawMessage({ header, payload: jpeg.subarray(0, jpeg.length - 10) })];
    },
    error: /frame 0 carries \d+ payload bytes but its header says payloadLength \d+/,
    code: 'ERR_LENGTH_MISMATCH',
    corrupt: true,
  },
  {
    name: 'a CRC-32 mismatch',
    stream: JPEG_STREAM,
    bytes: () => [jpegFrame(0), jpegFrame(1, { crc32: (crc32(jpeg) ^ 1) >>> 0 })],
    error: /frame 1 payload CRC-32 is 0x[0-9a-f]{8} but its header says 0x[0-9a-f]{8}/,
    code: 'ERR_CHECKSUM',
    corrupt: true,
  },
  {
    name: 'a raw frame whose size is not width * height * 3',
    stream: RAW_STREAM,
    bytes: () => {
      const payload = Buffer.alloc(40, 0x80);
      const header = { type: 'frame', seq: 0, captureTime: 1, width: 4, height: 4, channels: 3, encoding: 'raw-bgr', payloadLength: 40, crc32: crc32(payload), dropped: 0 };
      return [rawMessage({ header, payload })];
    },
    error: /raw-bgr frame 0 is 4x4x3 = 48 bytes but its header says payloadLength 40/,
    code: 'ERR_LENGTH_MISMATCH',
    corrupt: true,
  },
  {
    name: 'a 10 MB frame on a 64x48 JPEG stream (4 KB of it sent)',
    stream: JPEG_STREAM,
    bytes: () => [oversizedFrame(10_000_000, 4096)],
    error: new RegExp(`frame 0 payload of 10000000 bytes exceeds the frame limit of ${JPEG_FRAME_LIMIT} bytes`),
    code: 'ERR_TOO_LARGE',
    corrupt: true,
  },
  {
    name: 'a 10 MB frame in the same write as the hello that announces a 64x48 JPEG stream',
    stream: JPEG_STREAM,
    together: true,
    bytes: () => [oversizedFrame(10_000_000, 4096)],
    error: new RegExp(`frame 0 payload of 10000000 bytes exceeds the frame limit of ${JPEG_FRAME_LIMIT} bytes`),
    code: 'ERR_TOO_LARGE',
    corrupt: true,
  },
  {
    name: 'a 100 MB frame on a 64x48 JPEG stream (4 KB of it sent)',
    stream: JPEG_STREAM,
    bytes: () => [oversizedFrame(100_000_000, 4096)],
    error: /message length \d+ exceeds the limit of 67108864 bytes/,
    code: 'ERR_TOO_LARGE',
    corrupt: true,
  },
  {
    name: 'a frame of another size than announced',
    stream: JPEG_STREAM,
    bytes: () => [jpegFrame(0), frameMessage(jpeg, { seq: 1, captureTime: 1, width: 128, height: 96, channels: 3, encoding: 'jpeg' })],
    error: /frame 1 is 128x96x3 jpeg, but the stream was announced as 64x48x3 jpeg/,
    code: 'ERR_STREAM_MISMATCH',
    corrupt: true,
  },
  {
    name: 'out-of-order sequence numbers',
    stream: JPEG_STREAM,
    bytes: () => [jpegFrame(5), jpegFrame(6), jpegFrame(3)],
    error: /frame 3 arrived after frame 6: sequence numbers must increase/,
    code: 'ERR_OUT_OF_ORDER',
    corrupt: true,
  },
  {
    name: 'a drop counter that goes back',
    stream: JPEG_STREAM,
    bytes: () => [jpegFrame(5, { dropped: 4 }), jpegFrame(6, { dropped: 2 })],
    error: /the sender's drop counter went back from 4 to 2/,
    code: 'ERR_OUT_OF_ORDER',
    corrupt: true,
  },
];

/** A fake sender that says hello (if the case has a stream) and then sends the case's bytes, on every connection. */
function hostileSender(c: HostileCase): Promise<FakeSender> {
  return FakeSender.start(async (socket: net.Socket) => {
    await FakeSender.helloFrom(socket);
    const hello = c.stream ? [senderHello(c.stream)] : [];
    const chunks = c.together ? [Buffer.concat([...hello, ...c.bytes()])] : [...hello, ...c.bytes()];
    for (const chunk of chunks) await writeAll(socket, chunk);
    if (c.close) socket.end();
  });
}

/** The receiver's frame check, as receive() does it, for runSession alone. */
function checkedFrames(): { onStream: () => void; onFrame: (h: FrameHeader) => void; frames: () => number } {
  const check = new SequenceCheck();
  let frames = 0;
  return {
    onStream: () => undefined,
    onFrame: (header) => {
      check.accept(header);
      frames++;
    },
    frames: () => frames,
  };
}

describe.each(cases)('a sender sending $name', (c) => {
  it('ends the session promptly with an error naming it, and is told why', async () => {
    await using fake = await hostileSender(c);
    // Long timeouts: every case here must be decided by the bytes, not by a timer (whose error
    // would not match c.error).
    const end = await runSession({ host: '127.0.0.1', port: fake.port, name: 'victim', handshakeTimeoutMs: 20_000, idleTimeoutMs: 20_000 }, checkedFrames());
    expect(end.kind).toBe('failed');
    const { error } = end as Extract<SessionEnd, { kind: 'failed' }>;
    expect(error.message).toMatch(c.error);
    if (c.code) {
      expect((error as { code?: string }).code).toMatch(c.code);
      // PROTOCOL.md section 4: the side that detects an error says so before closing.
      await until(() => fake.errorsReceived.length > 0, 'the error message to reach the fake sender', 5000);
      expect(fake.errorsReceived[0]).toMatchObject({ type: 'error', code: expect.stringMatching(c.code), reason: error.message });
    }
  });

  it('receive() counts it, reconnects and carries on', async () => {
    await using fake = await hostileSender(c);
    const { stats, log, result, stop } = startReceiver(fake.port, { reconnect: true, name: 'victim' });
    try {
      await until(() => fake.connections >= 3, 'the receiver to come back twice');
      await until(() => log.filter((l) => c.error.test(l)).length >= 2, 'the error to be logged for each connection');
    } finally {
      stop();
    }
    expect(await result).toEqual({ outcome: 'stopped' });
    if (c.corrupt) expect(stats.corrupt).toBeGreaterThanOrEqual(2);
    else expect(stats.corrupt).toBe(0);
    expect(log.join('\n')).toMatch(/reconnecting in/);
    expect(stats.summary().gaps).toBe(0);
  });
});

describe('a silent sender', () => {
  it('that never says hello: the session gives up at the handshake deadline', async () => {
    await using fake = await FakeSender.start(() => undefined);
    const started = Date.now();
    const end = await runSession({ host: '127.0.0.1', port: fake.port, name: 'victim', handshakeTimeoutMs: 300, idleTimeoutMs: 20_000 }, checkedFrames());
    expect(end).toMatchObject({ kind: 'failed', connected: true, error: expect.objectContaining({ message: 'no hello from the sender within 300 ms' }) });
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });

  it('that goes quiet after its hello: the session calls the connection dead', async () => {
    await using fake = await FakeSender.start(async (socket) => {
      await FakeSender.helloFrom(socket);
      await writeAll(socket, senderHello(JPEG_STREAM));
      await writeAll(socket, jpegFrame(0));
    });
    const frames = checkedFrames();
    const end = await runSession({ host: '127.0.0.1', port: fake.port, name: 'victim', idleTimeoutMs: 1000 }, frames);
    expect(end).toMatchObject({ kind: 'failed', error: expect.objectContaining({ message: 'no data from the sender for 1 s: the connection is dead' }) });
    expect(frames.frames()).toBe(1);
  });

  it('receive() reconnects after either (default deadlines: 5 s for the hello, 10 s of silence)', async () => {
    await using mute = await FakeSender.start(() => undefined);
    await using quiet = await FakeSender.start(async (socket) => {
      await FakeSender.helloFrom(socket);
      await writeAll(socket, senderHello(JPEG_STREAM));
    });
    const runs = [mute, quiet].map((fake) => ({ fake, ...startReceiver(fake.port, { reconnect: true, name: 'patient' }) }));
    try {
      await until(() => runs.every((r) => r.fake.connections >= 2), 'both receivers to reconnect', 25_000);
    } finally {
      for (const r of runs) r.stop();
    }
    for (const r of runs) {
      expect(await r.result).toEqual({ outcome: 'stopped' });
      expect(r.stats.corrupt).toBe(0);
    }
    expect(runs[0]!.log.join('\n')).toMatch(/no hello from the sender within 5000 ms[\s\S]*reconnecting in/);
    expect(runs[1]!.log.join('\n')).toMatch(/no data from the sender for 10 s: the connection is dead[\s\S]*reconnecting in/);
  }, 40_000);
});

/** Whether the bytes hold a receiver hello that the protocol's own decoder accepts. */
function holdsReceiverHello(bytes: Buffer): boolean {
  let found = false;
  try {
    new MessageDecoder().push(bytes, ({ header }) => {
      if (header.type === 'hello' && header.role === 'receiver') found = true;
    });
  } catch {
    // Bytes after the hello may be refused; the hello still got the client in.
  }
  return found;
}

describe('fuzzing', () => {
  /** A valid session's bytes from the sender: hello and two frames. */
  const validStream = () => Buffer.concat([senderHello(JPEG_STREAM), jpegFrame(0), jpegFrame(1)]);

  /** Cuts bytes at the given offsets, like socket reads of random sizes. */
  const chunked = (bytes: Buffer, cuts: number[]) => {
    const offsets = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
    const chunks: Buffer[] = [];
    let start = 0;
    for (const cut of [...offsets, bytes.length]) {
      if (cut > start) chunks.push(bytes.subarray(start, cut));
      start = Math.max(start, cut);
    }
    return chunks;
  };

  /** Random bytes, or a valid stream with a few bytes changed and maybe cut short. */
  const hostileBytes = fc.oneof(
    fc.uint8Array({ minLength: 1, maxLength: 3000 }).map((a) => Buffer.from(a)),
    fc
      .record({
        flips: fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 6 }),
        cutAt: fc.option(fc.nat(), { nil: undefined, freq: 2 }),
      })
      .map(({ flips, cutAt }) => {
        const bytes = Buffer.from(validStream());
        for (const { at, value } of flips) bytes[at % bytes.length] = value;
        return cutAt === undefined ? bytes : bytes.subarray(0, cutAt % bytes.length);
      }),
  );

  it('random and mutated byte streams in random chunks: the receiver session ends cleanly every time', async () => {
    let current: Buffer[] = [];
    await using fake = await FakeSender.start(async (socket) => {
      await FakeSender.helloFrom(socket);
      for (const chunk of current) {
        await writeAll(socket, chunk);
        await new Promise((r) => setImmediate(r));
      }
      socket.end();
    });
    await fc.assert(
      fc.asyncProperty(hostileBytes, fc.array(fc.nat(), { maxLength: 10 }), async (bytes, cuts) => {
        current = chunked(bytes, cuts);
        let timer: NodeJS.Timeout | undefined;
        const end = await Promise.race([
          runSession({ host: '127.0.0.1', port: fake.port, name: 'fuzzed', handshakeTimeoutMs: 3000, idleTimeoutMs: 3000 }, checkedFrames()),
          new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), 8000))),
        ]);
        clearTimeout(timer);
        expect(end).not.toBe('hung');
        if (end !== 'hung' && end.kind === 'failed') {
          expect(end.error).toBeInstanceOf(Error);
          expect(end.error.message.length).toBeGreaterThan(0);
          const code = (end.error as { code?: unknown }).code;
          if (code !== undefined) expect(code).toMatch(/^ERR_[A-Z_]+$/);
        } else if (end !== 'hung') {
          // A mutation can leave a valid stream (then the sender's close ends it) or an error/bye message.
          expect(['refused', 'bye']).toContain(end.kind);
        }
      }),
      { numRuns: 50 },
    );
  });

  it('random and mutated client bytes in random chunks: the sender refuses cleanly and keeps serving', async () => {
    const camera = new FakeCamera({ width: 64, height: 48, fps: 30 });
    const server = await startServerWith(camera, 'jpeg', { maxViewers: 16, handshakeTimeoutMs: 300 });
    const stop = new AbortController();
    const pumping = pump(server, camera, stop.signal);
    const clientBytes = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 3000 }).map((a) => ({ bytes: Buffer.from(a), hello: false })),
      fc.uint8Array({ maxLength: 1000 }).map((a) => ({ bytes: Buffer.concat([receiverHello('fuzz'), Buffer.from(a)]), hello: true })),
      fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 4 }).map((flips) => {
        const bytes = Buffer.from(receiverHello('fuzz'));
        for (const { at, value } of flips) bytes[at % bytes.length] = value;
        // A flip can leave a valid hello (a name 'f' -> ' '): that client gets in too.
        return { bytes, hello: holdsReceiverHello(bytes) };
      }),
    );
    try {
      await fc.assert(
        fc.asyncProperty(clientBytes, fc.array(fc.nat(), { maxLength: 10 }), fc.boolean(), async ({ bytes, hello }, cuts, endIt) => {
          // A client that got in with a valid hello would be served forever: it closes its side.
          const end = hello || endIt;
          const exchange = await rawExchange(server.port, chunked(bytes, cuts), { end, timeoutMs: 5000 });
          expect(exchange.closedByPeer).toBe(true);
          const errors = exchange.messages.filter((m): m is Extract<Header, { type: 'error' }> => m.type === 'error');
          expect(errors.length).toBeLessThanOrEqual(1);
          for (const e of errors) expect(e.code).toMatch(/^ERR_[A-Z_]+$/);
          if (errors.length > 0) expect(exchange.messages.at(-1)).toBe(errors[0]);
          for (const m of exchange.messages) expect(['hello', 'frame', 'ping', 'error', 'bye']).toContain(m.type);
        }),
        { numRuns: 50 },
      );
      await until(() => server.connectionCount === 0, 'every fuzzing client to be gone');
      const healthy = startReceiver(server.port, { maxFrames: 10, name: 'after the fuzz' });
      expect(await healthy.result).toEqual({ outcome: 'frames-reached' });
      expect(healthy.stats.summary()).toMatchObject({ frames: 10, gaps: 0, corrupt: 0 });
    } finally {
      stop.abort();
      await pumping;
      await server.close('test over');
      await camera.close();
    }
  });
});

it('never allocates what fake senders announce (2^64 - 1, 1 GB, 100 MB, 10 MB): memory stays bounded', async () => {
  const announcing = cases.filter((c) => /2\^64|\b1 GB\b|\b10+ MB\b/.test(c.name));
  expect(announcing).toHaveLength(6);
  const megabytes = () => {
    const { rss, arrayBuffers } = process.memoryUsage();
    return { rss: rss / 1024 / 1024, buffers: arrayBuffers / 1024 / 1024 };
  };
  const before = megabytes();
  const peak = { ...before };
  const sample = () => {
    const now = megabytes();
    peak.rss = Math.max(peak.rss, now.rss);
    peak.buffers = Math.max(peak.buffers, now.buffers);
  };
  // Sampled while the sessions run, not only after them: a buffer of the announced size would
  // live at least until the bytes the sender never sends stopped coming.
  const sampler = setInterval(sample, 5);
  try {
    for (const c of announcing) {
      for (let round = 0; round < 3; round++) {
        await using fake = await hostileSender(c);
        const end = await runSession({ host: '127.0.0.1', port: fake.port, name: 'victim', handshakeTimeoutMs: 20_000, idleTimeoutMs: 20_000 }, checkedFrames());
        expect(end).toMatchObject({ kind: 'failed', error: expect.objectContaining({ message: expect.stringMatching(c.error) }) });
        sample();
      }
    }
  } finally {
    clearInterval(sampler);
  }
  expect(peak.buffers - before.buffers).toBeLessThan(MEMORY_GROWTH_LIMIT_MB);
  expect(peak.rss - before.rss).toBeLessThan(MEMORY_GROWTH_LIMIT_MB);
});

it('receive() passes its timeouts on: a sender that goes quiet after its hello is dropped and retried', async () => {
  await using fake = await FakeSender.start(async (socket: net.Socket) => {
    await FakeSender.helloFrom(socket);
    await writeAll(socket, senderHello(JPEG_STREAM)); // and then nothing, not even pings
  });
  const { log, result, stop } = startReceiver(fake.port, { reconnect: true, name: 'patient', timeouts: { idleTimeoutMs: 300 } });
  try {
    await until(() => fake.connections >= 2, 'the receiver to give up on the quiet sender and come back', 5000);
  } finally {
    stop();
  }
  expect(await result).toEqual({ outcome: 'stopped' });
  expect(log).toContain('no data from the sender for 300 ms: the connection is dead');
});
