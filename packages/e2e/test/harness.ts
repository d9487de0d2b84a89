import type { FrameSink, FrameSource, RawImage } from '@camstream/media';
import { OpenCVCodec } from '@camstream/opencv';
import { encodeMessage, PROTOCOL_NAME, PROTOCOL_VERSION, type Encoding } from '@camstream/protocol';
import { receive, ReceiverStats, type ReceiverOptions, type ReceiverResult } from '@camstream/receiver';
import { imageDifference, readFrameNumber, renderFakeFrame } from '@camstream/testkit';
import { Broadcast, pumpFrames, StreamServer, type PumpResult } from '@camstream/sender';

/** Shared by the in-process stream tests: a real server, real codec, real sockets. */
export const codec = new OpenCVCodec();

/** The broadcast each server started here serves, as the app wires them: pump() publishes through it. */
const broadcasts = new WeakMap<StreamServer, Broadcast>();

/** The stream of a fake camera as the app announces it (JPEG at the app's default quality, 80). */
function broadcastOf(source: FrameSource, encoding: Encoding): Broadcast {
  const { width, height, fps } = source.info;
  return new Broadcast({ codec, stream: { width, height, fps, pixelFormat: 'bgr24', encoding, source: 'fake camera' } });
}

export async function startServer(source: FrameSource, encoding: Encoding, options: { port?: number; maxViewers?: number } = {}) {
  const broadcast = broadcastOf(source, encoding);
  const server = await StreamServer.listen({
    host: '127.0.0.1',
    port: options.port ?? 0,
    broadcast,
    maxViewers: options.maxViewers ?? 8,
  });
  broadcasts.set(server, broadcast);
  return server;
}

/** The capture loop of a server started by startServer or startServerWith, until the source ends or `signal`. */
export function pump(server: StreamServer, source: FrameSource, signal?: AbortSignal): Promise<PumpResult> {
  const broadcast = broadcasts.get(server);
  if (!broadcast) throw new Error('pump() needs a server started by startServer or startServerWith');
  return pumpFrames({ source, broadcast, ...(signal ? { signal } : {}) });
}

/** A sink that checks every image it is given carries the fake camera's content for its number. */
export class CheckingSink implements FrameSink {
  readonly numbers: number[] = [];
  worstDifference = 0;
  closed = false;

  write(image: RawImage): void {
    const n = readFrameNumber(image);
    if (n === null) throw new Error('a shown image carries no frame number');
    this.numbers.push(n);
    this.worstDifference = Math.max(this.worstDifference, imageDifference(image, renderFakeFrame(n, image.width, image.height)));
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

export interface TestReceiver {
  stats: ReceiverStats;
  sink: CheckingSink;
  result: Promise<ReceiverResult>;
  stop(): void;
  log: string[];
}

export function startReceiver(
  port: number,
  options: { maxFrames?: number; reconnect?: boolean; name?: string; timeouts?: ReceiverOptions['timeouts'] } = {},
): TestReceiver {
  const stats = new ReceiverStats();
  const sink = new CheckingSink();
  const abort = new AbortController();
  const log: string[] = [];
  const result = receive({
    host: '127.0.0.1',
    port,
    name: options.name ?? 'test receiver',
    codec,
    openSinks: async () => [sink],
    ...(options.maxFrames === undefined ? {} : { maxFrames: options.maxFrames }),
    reconnect: options.reconnect ?? false,
    ...(options.timeouts ? { timeouts: options.timeouts } : {}),
    backoffMs: { min: 20, max: 200 },
    stats,
    log: (line) => log.push(line),
    signal: abort.signal,
  });
  return { stats, sink, result, stop: () => abort.abort(), log };
}

export async function until(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function receiverHello(name = 'raw test client'): Buffer {
  return encodeMessage({ type: 'hello', protocol: PROTOCOL_NAME, version: PROTOCOL_VERSION, role: 'receiver', name }).head;
}

// ---------------------------------------------------------------------------------------------
// Helpers for the hostile-peer, fault and soak tests (hostile-*.spec.ts, faults.spec.ts).
// (Their imports are here rather than at the top so the helpers above stay untouched.)
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { frameHeader, MessageDecoder, type FrameFields, type FrameHeader, type Header, type StreamDescription } from '@camstream/protocol';
import type { StreamServerOptions } from '@camstream/sender';
import { listenOnFreePort } from '@camstream/testkit';

/** startServer with any other StreamServer option, e.g. short handshake or stalled-viewer timeouts. */
export async function startServerWith(
  source: FrameSource,
  encoding: Encoding,
  options: Partial<Omit<StreamServerOptions, 'broadcast'>> = {},
): Promise<StreamServer> {
  const broadcast = broadcastOf(source, encoding);
  const server = await StreamServer.listen({
    host: '127.0.0.1',
    port: 0,
    maxViewers: 8,
    ...options,
    broadcast,
  });
  broadcasts.set(server, broadcast);
  return server;
}

/** One message built byte by byte, so tests can send what the encoder refuses to make. */
export { rawMessage } from '@camstream/protocol/testing';

/** Just the 12 bytes of lengths: N (uint64) and H (uint32), announcing what never follows. */
export function lengthPrefix(messageLength: bigint | number, headerLength?: number): Buffer {
  const prefix = Buffer.alloc(headerLength === undefined ? 8 : 12);
  prefix.writeBigUInt64BE(BigInt(messageLength), 0);
  if (headerLength !== undefined) prefix.writeUInt32BE(headerLength, 8);
  return prefix;
}

/** Random bytes, as many as asked. */
export function garbage(length: number): Buffer {
  return randomBytes(length);
}

export function senderHello(stream: StreamDescription): Buffer {
  return encodeMessage({ type: 'hello', protocol: PROTOCOL_NAME, version: PROTOCOL_VERSION, role: 'sender', stream }).head;
}

/** A whole frame message (head + payload in one Buffer); `patch` edits the valid header. */
export function frameMessage(payload: Buffer, fields: FrameFields, patch: Partial<FrameHeader> = {}): Buffer {
  const { head } = encodeMessage({ ...frameHeader(payload, fields), ...patch }, payload);
  return Buffer.concat([head, payload]);
}

export interface RawExchange {
  /** Every message the peer sent, in order (decoding stops at the first bad byte). */
  messages: Header[];
  /** Whether the peer closed the connection (else we gave up after timeoutMs). */
  closedByPeer: boolean;
  bytesReceived: number;
  /** Milliseconds from connect to close (or to giving up). */
  elapsedMs: number;
}

export interface RawExchangeOptions {
  /** Half-close our side after writing (default false: keep it open and let the peer decide). */
  end?: boolean;
  /** Give up (and destroy the socket) after this long (default 10 s). */
  timeoutMs?: number;
  /** Pause this long between chunks (default 0: a setImmediate, so chunks tend to arrive apart). */
  gapMs?: number;
}

/**
 * A hand-made client: connects, writes `chunks` one write each, reads and decodes whatever comes
 * back until the peer closes (or timeoutMs), then makes sure the socket is gone.
 */
export function rawExchange(port: number, chunks: readonly Buffer[], options: RawExchangeOptions = {}): Promise<RawExchange> {
  const { end = false, timeoutMs = 10_000, gapMs = 0 } = options;
  return new Promise((resolve) => {
    const started = Date.now();
    // allowHalfOpen: like a hostile client, go on writing after the peer has ended its side.
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const decoder = new MessageDecoder();
    const messages: Header[] = [];
    let bytesReceived = 0;
    let gaveUp = false;
    let peerEnded = false;
    let written = false;
    const timer = setTimeout(() => {
      gaveUp = true;
      socket.destroy();
    }, timeoutMs);
    socket.on('error', () => undefined); // a reset from the peer is a close like any other here
    socket.on('data', (chunk: Buffer) => {
      bytesReceived += chunk.length;
      try {
        for (const m of decoder.push(chunk)) messages.push(m.header);
      } catch {
        // what the peer sent is not ours to judge here; the messages before it are kept
      }
    });
    socket.on('end', () => {
      peerEnded = true;
      if (written) socket.end();
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ messages, closedByPeer: !gaveUp, bytesReceived, elapsedMs: Date.now() - started });
    });
    socket.on('connect', async () => {
      for (const chunk of chunks) {
        if (socket.destroyed) return;
        socket.write(chunk);
        await new Promise((r) => (gapMs > 0 ? setTimeout(r, gapMs) : setImmediate(r)));
      }
      written = true;
      if ((end || peerEnded) && !socket.destroyed) socket.end();
    });
  });
}

export type FakeSenderScript = (socket: net.Socket, connection: number) => void | Promise<void>;

/**
 * A fake sender on 127.0.0.1: runs `script` on every accepted connection (numbered from 1) and
 * counts them, so a test can see a receiver come back. Closing destroys every socket.
 */
export class FakeSender implements AsyncDisposable {
  connections = 0;
  /** The first message each connection's receiver sent (its hello), in order. */
  readonly hellos: Header[] = [];
  /** Error messages receivers sent back before closing. */
  readonly errorsReceived: Header[] = [];
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(script: FakeSenderScript): Promise<FakeSender> {
    const server = net.createServer();
    const port = await listenOnFreePort(server);
    const fake = new FakeSender(server, port);
    server.on('connection', (socket) => {
      const n = ++fake.connections;
      fake.sockets.add(socket);
      socket.on('close', () => fake.sockets.delete(socket));
      socket.on('error', () => undefined);
      const decoder = new MessageDecoder();
      socket.on('data', (chunk: Buffer) => {
        try {
          for (const { header } of decoder.push(chunk)) {
            if (header.type === 'hello') fake.hellos.push(header);
            if (header.type === 'error') fake.errorsReceived.push(header);
          }
        } catch {
          // only receivers talk to us; their bytes are not under test here
        }
      });
      Promise.resolve(script(socket, n)).catch(() => socket.destroy());
    });
    return fake;
  }

  /** Resolves once the receiver on this connection has sent its first whole message (its hello). */
  static async helloFrom(socket: net.Socket, timeoutMs = 10_000): Promise<void> {
    const decoder = new MessageDecoder();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error('no hello from the receiver')), timeoutMs);
      const onData = (chunk: Buffer) => {
        try {
          if (decoder.push(chunk).length > 0) finish();
        } catch (error) {
          finish(error as Error);
        }
      };
      const onClose = () => finish(new Error('closed before its hello'));
      const finish = (error?: Error) => {
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('close', onClose);
        if (error) reject(error);
        else resolve();
      };
      socket.on('data', onData);
      socket.on('close', onClose);
    });
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Writes and waits until the kernel took it (or the socket is gone). */
export function writeAll(socket: net.Socket, bytes: Buffer): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve();
    socket.write(bytes, () => resolve());
  });
}

/** This process's resident set, in MB. */
export function rssMb(): number {
  return process.memoryUsage().rss / 1024 / 1024;
}

/**
 * Only for time that is part of the behaviour under test (staying silent past a deadline). Never
 * before an assertion: wait for the event instead (until, waitForLine, a promise).
 */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether a process group started by the testkit (startApp) still has any member. */
export function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
