// Throughput of the tutorial-wire codec at 640x480, 1280x720 and 1920x1080 BGR, and the time to
// the first decoded 1080p frame over loopback TCP. Prints tables; not a test.
// Run: npx nx run tutorial-wire:bench   (BENCH_SECONDS=2 per row by default)
import { once } from 'node:events';
import { createServer, connect, type AddressInfo } from 'node:net';
import { decodeArrayPickle, encodeTutorialFrame, TutorialFrameDecoder, type BgrImage } from '../src';
import { Op } from '../src/opcodes';
import { binUnicode, bytes, global, int, proto, stackGlobal, u32, u64, uint8Dtype } from '../src/testing/pickle-bytes';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 2);
const WARMUP_SECONDS = 0.3;
const CHUNK_BYTES = 64 * 1024; // a typical socket read
const SIZES = [[640, 480], [1280, 720], [1920, 1080]] as const;

function testImage(width: number, height: number): BgrImage {
  const data = Buffer.allocUnsafe(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 11)) & 0xff;
  return { width, height, data };
}

/** The pickle layouts a receiver meets, each framed as the tutorial streamer sends it. */
function framedPickles(image: BgrImage): [string, Buffer][] {
  const { width, height, data } = image;
  const { head, pixels, tail } = encodeTutorialFrame(image);
  const shape = bytes(int(height), int(width), int(3), Op.TUPLE3);
  const fortran = Buffer.allocUnsafe(data.length);
  for (let h = 0, s = 0; h < height; h++) {
    for (let w = 0; w < width; w++) for (let c = 0; c < 3; c++, s++) fortran[h + height * (w + width * c)] = data[s] as number;
  }
  const reconstruct = (data4: Buffer, isFortran: boolean): Buffer => bytes(
    proto(4), stackGlobal('numpy.core.multiarray', '_reconstruct'), stackGlobal('numpy', 'ndarray'), int(0), Op.TUPLE1, Op.SHORT_BINBYTES, 1, 0x62, Op.TUPLE3, Op.REDUCE,
    Op.MARK, int(1), shape, uint8Dtype(), isFortran ? Op.NEWTRUE : Op.NEWFALSE, Op.BINBYTES, u32(data4.length), data4, Op.TUPLE, Op.BUILD, Op.STOP,
  );
  const protocol5 = bytes(
    proto(5), stackGlobal('numpy.core.numeric', '_frombuffer'), Op.MARK, Op.BYTEARRAY8, u64(data.length), data, uint8Dtype(), shape, bytes(Op.SHORT_BINUNICODE, 1, 0x43), Op.TUPLE, Op.REDUCE, Op.STOP,
  );
  const latin1Text = Buffer.from(data.toString('latin1'), 'utf8');
  const protocol2 = bytes(
    proto(2), global('numpy.core.multiarray', '_reconstruct'), global('numpy', 'ndarray'), int(0), Op.TUPLE1,
    global('_codecs', 'encode'), binUnicode('b'), binUnicode('latin1'), Op.TUPLE2, Op.REDUCE, Op.TUPLE3, Op.REDUCE,
    Op.MARK, int(1), bytes(int(height), int(width), int(3), Op.TUPLE3), global('numpy', 'dtype'), binUnicode('u1'), Op.NEWFALSE, Op.NEWTRUE, Op.TUPLE3, Op.REDUCE,
    Op.MARK, int(3), binUnicode('|'), Op.NONE, Op.NONE, Op.NONE, int(-1), int(-1), int(0), Op.TUPLE, Op.BUILD, Op.NEWFALSE,
    global('_codecs', 'encode'), binUnicode(latin1Text), binUnicode('latin1'), Op.TUPLE2, Op.REDUCE, Op.TUPLE, Op.BUILD, Op.STOP,
  );
  const frame = (pickle: Buffer): Buffer => Buffer.concat([u64(pickle.length), pickle]);
  return [
    ['protocol 4, C (Python 3.8+ default; ours)', Buffer.concat([head, pixels, tail])],
    ['protocol 5, C (Python 3.14 default)', frame(protocol5)],
    ['protocol 4, Fortran order', frame(reconstruct(fortran, true))],
    ['protocol 2 (latin-1 text)', frame(protocol2)],
  ];
}

function chunks(stream: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let offset = 0; offset < stream.length; offset += CHUNK_BYTES) out.push(stream.subarray(offset, offset + CHUNK_BYTES));
  return out;
}

/** Repeats `once` for `seconds`; returns how many times per second it ran. */
function rate(seconds: number, once: () => void): number {
  const deadline = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  const start = process.hrtime.bigint();
  let runs = 0;
  do {
    once();
    runs++;
  } while (process.hrtime.bigint() < deadline);
  return runs / (Number(process.hrtime.bigint() - start) / 1e9);
}

function measure(once: () => void): number {
  rate(WARMUP_SECONDS, once);
  return rate(SECONDS, once);
}

/** Connect -> first decoded frame, one 1080p frame served the way a sender writes it. */
async function firstFrameMs(image: BgrImage): Promise<number> {
  const server = createServer((socket) => {
    const { head, pixels, tail } = encodeTutorialFrame(image);
    socket.cork();
    socket.write(head);
    socket.write(pixels);
    socket.end(tail);
    socket.uncork();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const start = process.hrtime.bigint();
  const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
  const decoder = new TutorialFrameDecoder();
  const decoded = await new Promise<number>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      for (const pickle of decoder.push(chunk)) resolve(decodeArrayPickle(pickle).width);
    });
  });
  const elapsed = Number(process.hrtime.bigint() - start) / 1e6;
  socket.destroy();
  server.close();
  if (decoded !== image.width) throw new Error('wrong frame');
  return elapsed;
}

async function main(): Promise<void> {
  console.log(`tutorial-wire codec: BGR frames, ${SECONDS} s per row, ${CHUNK_BYTES / 1024} KiB chunks in, MB = 10^6 bytes of wire, Node ${process.version}`);
  console.log('');
  console.log('| size | operation | MB/s | frames/s |');
  console.log('|---|---|---:|---:|');
  for (const [width, height] of SIZES) {
    const image = testImage(width, height);
    const encoded = encodeTutorialFrame(image).byteLength;
    const perSecond = measure(() => encodeTutorialFrame(image));
    console.log(`| ${width}x${height} | encode (head, pixels, tail: no copy) | ${((perSecond * encoded) / 1e6).toFixed(0)} | ${perSecond.toFixed(0)} |`);
    for (const [label, stream] of framedPickles(image)) {
      const pieces = chunks(stream);
      const decoder = new TutorialFrameDecoder();
      const decodeOne = (): void => {
        for (const piece of pieces) for (const pickle of decoder.push(piece)) decodeArrayPickle(pickle);
      };
      const framesPerSecond = measure(decodeOne);
      console.log(`| ${width}x${height} | decode ${label} | ${((framesPerSecond * stream.length) / 1e6).toFixed(0)} | ${framesPerSecond.toFixed(0)} |`);
    }
  }
  const image = testImage(1920, 1080);
  const runs: number[] = [];
  for (let i = 0; i < 7; i++) runs.push(await firstFrameMs(image));
  runs.sort((a, b) => a - b);
  console.log('');
  console.log(`first 1920x1080 frame over loopback TCP, connect to decoded image: median ${runs[3]?.toFixed(1)} ms, ` +
    `range ${runs[0]?.toFixed(1)}-${runs[6]?.toFixed(1)} ms (7 runs; the tutorial's receiver needs about 17 s, NOTES.md section 2)`);
}

void main();
