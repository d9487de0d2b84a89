import net from 'node:net';
import type { FrameHeader, PayloadBuffers, StreamDescription } from '@camstream/protocol';
import { decodeArrayPickle, TooLargeError, TutorialFrameDecoder, TutorialWireError, type MaxSize } from '@camstream/tutorial-wire';
import { toBgr } from './bgr';
import type { SessionEnd, SessionHandlers } from './connection';
import { TutorialStreamError } from './errors';
import { describeSocketError } from './transport';

export interface TutorialSessionOptions {
  host: string;
  port: number;
  /** The largest image accepted (--max-size): a longer frame is refused from its 8-byte length. */
  maxSize?: MaxSize;
  /** A connection with no bytes for this long is dead: the tutorial's streamer sends without pause (default 10 s). */
  idleTimeoutMs?: number;
  /** Where pickles that span socket reads (and converted images) land: frames then carry `pooled`. */
  payloadBuffers?: PayloadBuffers;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

/**
 * Refusals that the same streamer would make again: a pickle that is no numpy image (or tries to
 * run something), an array camstream does not show, an image over --max-size.
 */
const FINAL_CODES = new Set(['ERR_NOT_ALLOWED', 'ERR_UNSUPPORTED_ARRAY', 'ERR_TOO_LARGE']);
/** How much of the peer's first bytes is kept to recognise a camstream sender. */
const SNIFFED_BYTES = 64;

/**
 * One connection to the tutorial's streamer (or camstream-sender --wire tutorial), from connect to
 * close. Its wire has no handshake, no sequence numbers, no capture times and no checksums: the
 * session splits the byte stream into pickles (TutorialFrameDecoder), decodes each with the strict
 * pickle decoder (never an unpickler: nothing in a pickle is run), converts gray and BGRA arrays to
 * BGR, numbers the frames itself and stamps each with its arrival time. The stream's size is
 * learned from its first frame (onStream), and again whenever it changes. A refused pickle ends the
 * connection with a TutorialStreamError that names the opcode or global. Resolves (never rejects)
 * with how the connection ended, as runSession does.
 *
 * The tutorial's streamer serves one client and exits when it leaves; it ends the stream (at a
 * frame boundary) when it stops: that is reported as a bye.
 */
export function runTutorialSession(options: TutorialSessionOptions, handlers: SessionHandlers): Promise<SessionEnd> {
  return new Promise((resolve) => {
    if (options.signal?.aborted) return resolve({ kind: 'stopped' });
    const { host, port, payloadBuffers: pool } = options;
    const where = `${host}:${port}`;
    /** The buffer allocate() handed out last: a pickle that is it came from the pool. */
    let allocated: Buffer | undefined;
    const decoder = new TutorialFrameDecoder({
      ...(options.maxSize ? { maxSize: options.maxSize } : {}),
      ...(pool ? { allocate: (bytes: number) => (allocated = pool.take(bytes)) } : {}),
    });
    let settled = false;
    let connected = false;
    let connectedAt = 0;
    let frames = 0;
    let size: string | undefined;
    let firstBytes: Buffer | undefined = Buffer.alloc(0);

    const socket = net.connect({ host, port });
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);

    const finish = (end: SessionEnd) => {
      if (settled) return;
      settled = true;
      options.signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve(end);
    };
    const fail = (error: Error) => finish({ kind: 'failed', connected, error });

    /** A decoder's refusal as the session's error: what was refused, and that nothing ran. */
    const refused = (error: TutorialWireError) => {
      if (error instanceof TooLargeError && frames === 0 && firstBytes && looksLikeCamstream(firstBytes)) {
        return new TutorialStreamError(
          `the peer at ${where} speaks camstream, not the tutorial's wire: connect without --wire tutorial`,
          'ERR_NOT_TUTORIAL',
          true,
          false,
          { cause: error },
        );
      }
      const what = error.code === 'ERR_TRUNCATED' && decoder.failed === error ? 'the stream' : `frame ${frames + 1} of this connection`;
      return new TutorialStreamError(
        `refused ${what} from the tutorial streamer at ${where} (nothing in it was run): ${error.message} (${error.code})`,
        error.code,
        FINAL_CODES.has(error.code),
        true,
        { cause: error },
      );
    };

    const received = (pickle: Buffer, receivedAt: number) => {
      const pickleFromPool = pickle === allocated;
      let image;
      try {
        image = decodeArrayPickle(pickle, options.maxSize ? { maxSize: options.maxSize } : {});
      } catch (error) {
        if (pickleFromPool) pool!.give(pickle);
        throw error;
      }
      const { width, height, channels } = image;
      let pixels = image.data;
      // The image is the pickle's own bytes for a C-order array; else the pickle is read and done.
      let pooled = pickleFromPool && pixels.buffer === pickle.buffer;
      if (channels !== 3) {
        const into = pool ? pool.take(width * height * 3) : Buffer.allocUnsafe(width * height * 3);
        pixels = toBgr(pixels, channels, width, height, into);
        pooled = pool !== undefined;
      }
      if (pickleFromPool && !(pooled && pixels.buffer === pickle.buffer)) pool!.give(pickle);
      frames++;
      const key = `${width}x${height}`;
      if (key !== size) {
        if (size === undefined) options.log?.(`first frame from the tutorial streamer at ${where}: ${key}, ${((performance.now() - connectedAt) / 1000).toFixed(3)} s after connecting`);
        else options.log?.(`the tutorial streamer's frames are now ${key} (were ${size})`);
        size = key;
        const stream: StreamDescription = { width, height, fps: 0, pixelFormat: 'bgr24', encoding: 'raw-bgr', source: "the tutorial's pickle stream" };
        handlers.onStream(stream, { rungs: [{ width, height }], senderName: undefined });
      }
      const header: FrameHeader = {
        type: 'frame',
        seq: frames - 1,
        // No capture time on this wire: the arrival time stands in for it (the stats know).
        captureTime: receivedAt,
        width,
        height,
        channels: 3,
        encoding: 'raw-bgr',
        payloadLength: pixels.length,
        crc32: 0,
        dropped: 0,
      };
      handlers.onFrame(header, pixels, { rung: 0, declaredDrops: 0, undeclaredGap: 0, pooled });
    };

    socket.on('data', (chunk: Buffer) => {
      if (settled) return;
      const receivedAt = performance.timeOrigin + performance.now();
      if (firstBytes && firstBytes.length < SNIFFED_BYTES) firstBytes = Buffer.concat([firstBytes, chunk.subarray(0, SNIFFED_BYTES - firstBytes.length)]);
      try {
        for (const pickle of decoder.push(chunk)) {
          if (settled) return;
          received(pickle, receivedAt);
          firstBytes = undefined;
        }
      } catch (error) {
        // A refused pickle or length, or a handler that refused the frame: the connection ends.
        fail(error instanceof TutorialWireError ? refused(error) : (error as Error));
      }
    });

    socket.on('end', () => {
      if (settled) return;
      try {
        decoder.end();
      } catch (error) {
        return fail(error instanceof TutorialWireError ? refused(error) : (error as Error));
      }
      if (frames === 0) return fail(new Error(`the peer at ${where} closed the connection before sending a frame`));
      finish({ kind: 'bye', reason: `the tutorial streamer at ${where} ended its stream after ${frames} frames (it serves one client, then exits)` });
    });
    socket.on('close', () => fail(new Error(`the tutorial streamer at ${where} closed the connection${decoder.midFrame ? ' in the middle of a frame' : ''}`)));
    socket.on('error', (error) => fail(describeSocketError(error, { host, port })));

    const idleMs = options.idleTimeoutMs ?? 10_000;
    socket.setTimeout(idleMs, () => fail(new Error(`no data from the tutorial streamer at ${where} for ${idleMs % 1000 === 0 ? `${idleMs / 1000} s` : `${idleMs} ms`}: the connection is dead`)));

    socket.on('connect', () => {
      connected = true;
      connectedAt = performance.now();
    });

    const onAbort = () => finish({ kind: 'stopped' });
    options.signal?.addEventListener('abort', onAbort);
  });
}

/**
 * A camstream message: a big-endian uint64 length (its high half 0), a uint32 header length, then
 * a JSON header (a camstream sender says nothing before the receiver's hello, then refuses with an
 * `error` message once its handshake deadline is over).
 */
function looksLikeCamstream(bytes: Buffer): boolean {
  return bytes.length >= 21 && bytes.readUInt32BE(0) === 0 && bytes.subarray(12, 21).toString('latin1') === '{"type":"';
}
