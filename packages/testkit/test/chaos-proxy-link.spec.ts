import * as net from 'node:net';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { ChaosProxy, freePort, listenOnFreePort, type ChaosProxyOptions, type Direction, type RateChange } from '../src';

// Timing tests of a tool on a shared machine: rates are measured between arrival events over
// windows of a second or more, tolerances are wide, and nothing bounds how fast the machine is.

const TOLERANCE = 0.15;
/** A link that delivers nothing for this long has stalled: fail with figures instead of a jest timeout. */
const STALL_MS = 5000;

/** Every 'data' event of a socket: when it came (performance.now()), how big, and the running total. */
class ArrivalLog {
  readonly times: number[] = [];
  readonly totals: number[] = [];
  readonly sizes: number[] = [];
  total = 0;
  private readonly waiters = new Set<() => void>();

  constructor(socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.total += chunk.length;
      this.times.push(performance.now());
      this.totals.push(this.total);
      this.sizes.push(chunk.length);
      for (const check of [...this.waiters]) check();
    });
  }

  /** Resolves with the time of the arrival that brought the total to at least `bytes`. */
  reach(bytes: number): Promise<number> {
    return this.waitFor(`${bytes} bytes`, () => (this.total >= bytes ? this.times[this.times.length - 1] : undefined));
  }

  /** Resolves at the first arrival at or after `time`. */
  passes(time: number): Promise<number> {
    return this.waitFor(`an arrival ${Math.round(time - performance.now())} ms from now`, () => {
      const last = this.times[this.times.length - 1];
      return last !== undefined && last >= time ? last : undefined;
    });
  }

  /** Bytes per second that arrived in (from, to]. */
  rateBetween(from: number, to: number): number {
    return ((this.totalAt(to) - this.totalAt(from)) * 1000) / (to - from);
  }

  /** Median size of the reads that arrived in (from, to]. */
  medianReadBetween(from: number, to: number): number {
    const sizes = this.sizes.filter((_, i) => this.times[i]! > from && this.times[i]! <= to).sort((a, b) => a - b);
    return sizes[sizes.length >> 1] ?? 0;
  }

  private totalAt(time: number): number {
    let total = 0;
    for (let i = 0; i < this.times.length && this.times[i]! <= time; i++) total = this.totals[i]!;
    return total;
  }

  /** Resolves when `test` finds something; rejects if nothing more arrives for STALL_MS (a stalled link). */
  private waitFor(what: string, test: () => number | undefined): Promise<number> {
    const now = test();
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const stalled = () => {
        this.waiters.delete(check);
        reject(new Error(`waiting for ${what}: nothing arrived for ${STALL_MS} ms (${this.total} bytes so far)`));
      };
      let timer = setTimeout(stalled, STALL_MS);
      const check = () => {
        clearTimeout(timer);
        const found = test();
        if (found === undefined) {
          timer = setTimeout(stalled, STALL_MS);
          return;
        }
        this.waiters.delete(check);
        resolve(found);
      };
      this.waiters.add(check);
    });
  }
}

/** Writes 64 KiB pieces as fast as the socket takes them, until it closes. */
function flood(socket: net.Socket): void {
  const piece = randomBytes(64 * 1024);
  const more = () => {
    while (!socket.destroyed && socket.writable && socket.write(piece));
  };
  socket.on('drain', more);
  more();
}

/** A target whose connections flood, log what arrives, or echo; it destroys them on close. */
async function startTarget(mode: 'flood' | 'log' | 'echo') {
  const sockets: net.Socket[] = [];
  const logs: ArrivalLog[] = [];
  const connected: Array<() => void> = [];
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    sockets.push(socket);
    logs.push(new ArrivalLog(socket));
    if (mode === 'flood') flood(socket);
    if (mode === 'echo') socket.on('data', (chunk: Buffer) => socket.write(chunk));
    for (const notify of connected.splice(0)) notify();
  });
  const port = await listenOnFreePort(server);
  const close = async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  };
  return {
    port,
    /** The first connection, once it exists. */
    first: async (): Promise<{ socket: net.Socket; log: ArrivalLog }> => {
      if (sockets.length === 0) await new Promise<void>((resolve) => connected.push(resolve));
      return { socket: sockets[0]!, log: logs[0]! };
    },
    [Symbol.asyncDispose]: close,
  };
}

async function connect(port: number): Promise<net.Socket> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  return socket;
}

/** A target, a proxy in front of it, and a client; `flowing` says which way the flood goes. */
async function floodThrough(flowing: Direction, proxyOptions: Omit<Parameters<typeof ChaosProxy.start>[0], 'target'>) {
  const target = await startTarget(flowing === 'downstream' ? 'flood' : 'log');
  const cleanUp = async () => {
    client?.destroy();
    await proxy?.close();
    await target[Symbol.asyncDispose]();
  };
  let proxy: ChaosProxy | undefined;
  let client: net.Socket | undefined;
  try {
    proxy = await ChaosProxy.start({ target: { host: '127.0.0.1', port: target.port }, ...proxyOptions });
    client = await connect(proxy.port);
    let log: ArrivalLog;
    let sender: net.Socket;
    if (flowing === 'downstream') {
      log = new ArrivalLog(client);
      sender = (await target.first()).socket;
    } else {
      flood(client);
      sender = client;
      log = (await target.first()).log;
    }
    return { proxy, log, sender, [Symbol.asyncDispose]: cleanUp };
  } catch (error) {
    await cleanUp();
    throw error;
  }
}

const within = (measured: number, expected: number) => {
  expect(measured).toBeGreaterThanOrEqual(expected * (1 - TOLERANCE));
  expect(measured).toBeLessThanOrEqual(expected * (1 + TOLERANCE));
};

describe('ChaosProxy slow link', () => {
  it.each<{ flowing: Direction; bytesPerSecond: number; oneWayDelayMs: number }>([
    { flowing: 'downstream', bytesPerSecond: 250_000, oneWayDelayMs: 0 },
    { flowing: 'upstream', bytesPerSecond: 1_250_000, oneWayDelayMs: 0 },
    { flowing: 'downstream', bytesPerSecond: 6_000_000, oneWayDelayMs: 30 },
  ])('carries a flat-out $flowing stream at its limit of $bytesPerSecond B/s (delay $oneWayDelayMs ms), in small paced pieces', async ({ flowing, bytesPerSecond, oneWayDelayMs }) => {
    await using run = await floodThrough(flowing, { link: { [flowing]: { bytesPerSecond, oneWayDelayMs } } });
    const { proxy, log } = run;
    // Past the first burst and the start-up, then 2.5 s worth of bytes.
    const start = await log.reach(bytesPerSecond * 0.3);
    const usageAtStart = proxy.linkUsage(flowing);
    const end = await log.reach(log.total + bytesPerSecond * 2.5);
    const usageAtEnd = proxy.linkUsage(flowing);

    within(log.rateBetween(start, end), bytesPerSecond);
    // Link utilisation as a benchmark reports it: forwarded / capacity over the window.
    expect(usageAtEnd.unlimitedMs).toBe(usageAtStart.unlimitedMs);
    within((usageAtEnd.forwardedBytes - usageAtStart.forwardedBytes) / (usageAtEnd.capacityBytes - usageAtStart.capacityBytes), 1);
    // Paced in small pieces, a step every 2 ms or so (5 ms worth leaves room for late timers),
    // not in bursts that a receiver reads 64 KiB at a time.
    expect(log.medianReadBetween(start, end)).toBeLessThanOrEqual(Math.max(16 * 1024, bytesPerSecond / 200));
    // The other direction has no limit.
    expect(proxy.rate(flowing === 'upstream' ? 'downstream' : 'upstream')).toBe(Infinity);
  });

  it.each([{ bytesPerSecond: undefined }, { bytesPerSecond: 100_000 }])(
    'adds the one-way delay each way, after the rate limit: a ping-pong takes at least twice the delay (rate $bytesPerSecond)',
    async ({ bytesPerSecond }) => {
      const oneWayDelayMs = 40;
      await using target = await startTarget('echo');
      const link = { bytesPerSecond, oneWayDelayMs };
      await using proxy = await ChaosProxy.start({ target: { host: '127.0.0.1', port: target.port }, link: { upstream: link, downstream: link } });
      const client = await connect(proxy.port);
      for (let round = 0; round < 5; round++) {
        const sent = performance.now();
        client.write(`ping ${round}`);
        const [reply] = (await once(client, 'data')) as [Buffer];
        expect(performance.now() - sent).toBeGreaterThanOrEqual(2 * oneWayDelayMs);
        expect(reply.toString()).toBe(`ping ${round}`);
      }
    },
  );

  it('stops reading while its own buffer is full, so a sender writing flat out is held back by its kernel buffers', async () => {
    const bufferBytes = 32 * 1024;
    await using run = await floodThrough('downstream', { link: { downstream: { bytesPerSecond: 200_000, bufferBytes } } });
    const { proxy, log, sender } = run;
    await log.reach(300_000);
    const handedToKernel = sender.bytesWritten - sender.writableLength;
    const [stats] = proxy.connectionStats();
    // Its queue filled to the bound and never went past it...
    expect(stats!.peakBuffered.downstream).toBe(bufferBytes);
    expect(stats!.buffered.downstream).toBeLessThanOrEqual(bufferBytes);
    // ...so the sender, which would push gigabytes a second over loopback, got no further than
    // the kernel buffers in between hold (send buffer up to 4 MiB, receive buffer up to 32 MiB here).
    expect(handedToKernel - log.total).toBeLessThan(40 * 1024 * 1024);
  });

  it('holds bytes on their way through the delay line on top of the queue, and no more', async () => {
    const bufferBytes = 32 * 1024;
    const bytesPerSecond = 1_000_000;
    const oneWayDelayMs = 50;
    await using run = await floodThrough('downstream', { link: { downstream: { bytesPerSecond, bufferBytes, oneWayDelayMs } } });
    const { proxy, log } = run;
    await log.reach(1_000_000);
    const [stats] = proxy.connectionStats();
    const burst = 16 * 1024;
    const bytesPerMs = bytesPerSecond / 1000;
    // At the limit the delay line holds about rate x delay (50 KB) besides the full queue; a
    // late timer on a busy machine lets it hold a little more (here up to 250 ms worth).
    expect(stats!.peakBuffered.downstream).toBeGreaterThan(bufferBytes + bytesPerMs * (oneWayDelayMs / 2));
    expect(stats!.peakBuffered.downstream).toBeLessThanOrEqual(bufferBytes + burst + bytesPerMs * (oneWayDelayMs + 250));
  });

  it('follows its schedule from startSchedule(), changes rate at each phase boundary, and setRate() replaces it', async () => {
    const changes: RateChange[] = [];
    const changed = () => new Promise<RateChange>((resolve) => (notify = resolve));
    let notify: (change: RateChange) => void = () => undefined;
    await using run = await floodThrough('downstream', {
      link: {
        downstream: {
          bytesPerSecond: 1_000_000,
          schedule: [{ forMs: 1200, fraction: 1 }, { forMs: 2000, fraction: 0.25 }, { bytesPerSecond: 500_000 }],
        },
      },
      scheduleStart: 'manual',
      onRateChange: (change) => {
        changes.push(change);
        notify(change);
      },
    });
    const { proxy, log } = run;
    await log.reach(100_000);
    expect(changes).toEqual([]);

    const firstPhase = changed();
    proxy.startSchedule();
    const { at: started } = await firstPhase;
    const boundary = await changed();
    expect(boundary).toMatchObject({ direction: 'downstream', bytesPerSecond: 250_000, phase: 1 });
    expect(boundary.at - started).toBeGreaterThanOrEqual(1200);
    await log.passes(boundary.at + 1300);
    within(log.rateBetween(started + 300, boundary.at - 50), 1_000_000);
    within(log.rateBetween(boundary.at + 100, boundary.at + 1300), 250_000);

    // Still in the 2 s phase: a manual rate takes over, and the schedule's last phase never comes.
    const manual = changed();
    proxy.setRate('downstream', 2_000_000);
    const { at: setAt, phase } = await manual;
    expect(phase).toBeUndefined();
    await log.passes(setAt + 1300);
    within(log.rateBetween(setAt + 100, setAt + 1300), 2_000_000);
    expect(proxy.rate('downstream')).toBe(2_000_000);
    expect(changes.map((change) => change.bytesPerSecond)).toEqual([1_000_000, 250_000, 2_000_000]);
  });

  it("starts the schedule at the first connection with scheduleStart 'first-connection'", async () => {
    await using target = await startTarget('echo');
    const changes: RateChange[] = [];
    let notify: () => void = () => undefined;
    await using proxy = await ChaosProxy.start({
      target: { host: '127.0.0.1', port: target.port },
      link: { upstream: { schedule: [{ bytesPerSecond: 30_000 }] } },
      scheduleStart: 'first-connection',
      onRateChange: (change) => {
        changes.push(change);
        notify();
      },
    });
    expect(changes).toEqual([]);
    expect(proxy.rate('upstream')).toBe(Infinity);
    const connecting = performance.now();
    const firstChange = new Promise<void>((resolve) => (notify = resolve));
    const client = await connect(proxy.port);
    await firstChange;
    expect(changes).toEqual([{ direction: 'upstream', bytesPerSecond: 30_000, phase: 0, at: expect.any(Number) }]);
    expect(changes[0]!.at).toBeGreaterThanOrEqual(connecting);
    expect(proxy.rate('upstream')).toBe(30_000);
    client.destroy();
  });

  it("starts the schedule when it starts listening by default, and the base rate comes back after the last timed phase", async () => {
    await using target = await startTarget('echo');
    const changes: RateChange[] = [];
    let notify: () => void = () => undefined;
    const baseRestored = new Promise<void>((resolve) => (notify = resolve));
    const startedAt = performance.now();
    await using proxy = await ChaosProxy.start({
      target: { host: '127.0.0.1', port: target.port },
      link: { downstream: { bytesPerSecond: 50_000, schedule: [{ forMs: 100, bytesPerSecond: 0 }] } },
      onRateChange: (change) => {
        changes.push(change);
        if (change.phase === undefined) notify();
      },
    });
    expect(changes.map(({ bytesPerSecond, phase }) => ({ bytesPerSecond, phase }))).toEqual([{ bytesPerSecond: 0, phase: 0 }]);
    await baseRestored;
    expect(changes.map(({ bytesPerSecond, phase }) => ({ bytesPerSecond, phase }))).toEqual([
      { bytesPerSecond: 0, phase: 0 },
      { bytesPerSecond: 50_000, phase: undefined },
    ]);
    expect(changes[0]!.at).toBeGreaterThanOrEqual(startedAt);
    expect(changes[1]!.at - changes[0]!.at).toBeGreaterThanOrEqual(100);
    expect(proxy.rate('downstream')).toBe(50_000);
  });

  it('delivers every byte in order through a chaotic, slow, delayed link, with the end after them', async () => {
    await using target = await startTarget('echo');
    const link = { bytesPerSecond: 400_000, oneWayDelayMs: 15, bufferBytes: 8192 };
    await using proxy = await ChaosProxy.start({
      target: { host: '127.0.0.1', port: target.port },
      maxChunkBytes: 3000,
      seed: 10,
      link: { upstream: link, downstream: link },
    });
    const client = await connect(proxy.port);
    const echoed: Buffer[] = [];
    client.on('data', (chunk: Buffer) => echoed.push(chunk));
    const payload = randomBytes(200_000);
    client.end(payload);
    await once(client, 'end');
    expect(Buffer.concat(echoed).equals(payload)).toBe(true);
    expect(proxy.bytesForwarded).toEqual({ upstream: payload.length, downstream: payload.length });
  });

  it('cuts after exactly N bytes have come out of a slow link', async () => {
    await using target = await startTarget('echo');
    await using proxy = await ChaosProxy.start({
      target: { host: '127.0.0.1', port: target.port },
      cutAfterBytes: { downstream: 50_000 },
      link: { downstream: { bytesPerSecond: 200_000, oneWayDelayMs: 20 } },
    });
    const client = await connect(proxy.port);
    const received: Buffer[] = [];
    client.on('data', (chunk: Buffer) => received.push(chunk));
    const payload = randomBytes(120_000);
    client.write(payload);
    await once(client, 'end');
    expect(Buffer.concat(received).equals(payload.subarray(0, 50_000))).toBe(true);
    expect(proxy.bytesForwarded.downstream).toBe(50_000);
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    ['a negative rate', { link: { downstream: { bytesPerSecond: -1 } } }, /link\.downstream\.bytesPerSecond must be a number of bytes per second >= 0/],
    ['a NaN delay', { link: { upstream: { oneWayDelayMs: NaN } } }, /link\.upstream\.oneWayDelayMs must be a finite number/],
    ['a fractional buffer', { link: { upstream: { bufferBytes: 10.5 } } }, /link\.upstream\.bufferBytes must be a positive integer/],
    ['an empty schedule', { link: { downstream: { schedule: [] } } }, /link\.downstream\.schedule must be a non-empty array/],
    ['an open-ended phase before the last', { link: { downstream: { schedule: [{ fraction: 1 }, { forMs: 5, fraction: 1 }] } } }, /schedule\[0\]\.forMs is missing/],
    ['a phase with both rate and fraction', { link: { downstream: { schedule: [{ bytesPerSecond: 5, fraction: 1 }] } } }, /schedule\[0\] needs exactly one of bytesPerSecond and fraction/],
    ['an unknown schedule start', { scheduleStart: 'later' }, /scheduleStart must be one of start, first-connection, manual/],
  ])('rejects %s with an error naming it', async (_what, options, message) => {
    await expect(ChaosProxy.start({ target: { host: '127.0.0.1', port: 9 }, ...options } as ChaosProxyOptions)).rejects.toThrow(message);
  });

  it('listens on a given port, and says so when that port is taken', async () => {
    const port = await freePort();
    await using proxy = await ChaosProxy.start({ target: { host: '127.0.0.1', port: 9 }, listenPort: port });
    expect(proxy.port).toBe(port);
    await expect(ChaosProxy.start({ target: { host: '127.0.0.1', port: 9 }, listenPort: port })).rejects.toThrow(`cannot listen on 127.0.0.1:${port}: listen EADDRINUSE`);
    await expect(ChaosProxy.start({ target: { host: '127.0.0.1', port: 9 }, listenPort: 70_000 })).rejects.toThrow('listenPort must be an integer 0..65535, got 70000');
  });

  it('setRate rejects a rate that is not a number of bytes per second', async () => {
    await using proxy = await ChaosProxy.start({ target: { host: '127.0.0.1', port: 9 } });
    expect(() => proxy.setRate('downstream', Number.NaN)).toThrow(/downstream rate must be a number of bytes per second/);
    expect(() => proxy.setRate('sideways' as Direction, 1000)).toThrow(/direction must be upstream, downstream or both/);
    proxy.setRate('both', 1000);
    expect([proxy.rate('upstream'), proxy.rate('downstream')]).toEqual([1000, 1000]);
  });
});
