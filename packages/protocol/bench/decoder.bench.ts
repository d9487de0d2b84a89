// Decoder throughput on 1920x1080 raw BGR frames, as a receiver would see them from a socket.
// Prints a table; not a test. Run: npx nx run protocol:bench   (BENCH_SECONDS=3 by default)
import { encodeMessage, frameHeader, MessageDecoder } from '../src';

const WIDTH = 1920;
const HEIGHT = 1080;
const CHANNELS = 3;
const FRAMES_IN_STREAM = 8;
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 3);
const WARMUP_SECONDS = 0.5;

interface Result {
  chunkLabel: string;
  verifyChecksum: boolean;
  megabytesPerSecond: number;
  framesPerSecond: number;
}

/** Encodes the frames once into one stream, as the sender would put them on the wire. */
function buildStream(): Buffer {
  const parts: Buffer[] = [];
  for (let seq = 0; seq < FRAMES_IN_STREAM; seq++) {
    const pixels = Buffer.allocUnsafe(WIDTH * HEIGHT * CHANNELS);
    for (let i = 0; i < pixels.length; i += 4096) pixels.fill((seq * 31 + i / 4096) & 0xff, i, Math.min(i + 4096, pixels.length));
    const header = frameHeader(pixels, { seq, captureTime: Date.now(), width: WIDTH, height: HEIGHT, channels: CHANNELS, encoding: 'raw-bgr' });
    const { head, payload } = encodeMessage(header, pixels);
    parts.push(head, payload);
  }
  return Buffer.concat(parts);
}

/** Views of `chunkSize` bytes, like socket reads (chunk edges fall anywhere inside messages). */
function chunk(stream: Buffer, chunkSize: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < stream.length; offset += chunkSize) chunks.push(stream.subarray(offset, offset + chunkSize));
  return chunks;
}

/** Feeds the stream round and round for `seconds`; returns bytes and frames decoded per second. */
function run(chunks: readonly Buffer[], streamBytes: number, verifyChecksum: boolean, seconds: number) {
  const decoder = new MessageDecoder({ verifyChecksum });
  const deadline = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  const start = process.hrtime.bigint();
  let passes = 0;
  let frames = 0;
  do {
    for (const piece of chunks) frames += decoder.push(piece).length;
    passes++;
  } while (process.hrtime.bigint() < deadline);
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  if (frames !== passes * FRAMES_IN_STREAM || decoder.midMessage) throw new Error('decoder lost frames');
  return { megabytesPerSecond: (passes * streamBytes) / 1e6 / elapsed, framesPerSecond: frames / elapsed };
}

function main(): void {
  const stream = buildStream();
  const results: Result[] = [];
  for (const [chunkLabel, chunkSize] of [
    ['64 KiB', 64 * 1024],
    ['1 MiB', 1024 * 1024],
  ] as const) {
    const chunks = chunk(stream, chunkSize);
    for (const verifyChecksum of [false, true]) {
      run(chunks, stream.length, verifyChecksum, WARMUP_SECONDS);
      results.push({ chunkLabel, verifyChecksum, ...run(chunks, stream.length, verifyChecksum, SECONDS) });
    }
  }

  const payloadBytes = WIDTH * HEIGHT * CHANNELS;
  console.log(
    `MessageDecoder: ${WIDTH}x${HEIGHT}x${CHANNELS} raw-bgr frames (${payloadBytes}-byte payloads), ` +
      `${SECONDS} s per row, MB = 10^6 bytes, Node ${process.version}`,
  );
  console.log('| chunks | CRC check | MB/s | frames/s |');
  console.log('|---|---|---:|---:|');
  for (const r of results) {
    console.log(`| ${r.chunkLabel} | ${r.verifyChecksum ? 'on' : 'off'} | ${r.megabytesPerSecond.toFixed(0)} | ${r.framesPerSecond.toFixed(0)} |`);
  }
}

main();
