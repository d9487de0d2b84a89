/*
 * The recorder's child process. cv.VideoWriter.write is synchronous (MJPG at 720p: 6-9 ms a
 * frame; 1080p: about 20 ms) and neither way off the main thread works in-process with
 * @u4/opencv4nodejs 7.1.2:
 * - writeAsync is broken: its worker holds a copy of the cv::VideoWriter, frames written
 *   through it never reach the file, and later synchronous writes leave an unreadable file;
 * - loading the addon in a worker_thread re-initialises its class templates, after which the
 *   main thread's Mats fail every type check ("expected argument 0 to be of type Mat").
 * So the writer lives in a process of its own. Bonus: if the parent dies, the child sees its
 * stdin close and still finishes the file. For that reason it ignores SIGINT and SIGHUP: Ctrl-C
 * (or closing the terminal) signals the whole process group, and a child that died of it would
 * leave a file without its index while the parent reports the frames as recorded.
 *
 * Loading OpenCV takes the child 1-2 s here, so it can be started before the stream's size is
 * known (RecorderProcess) and told what to open later: the open settings come first on stdin.
 *
 * Plain JavaScript run with `node -e`, so it needs no TypeScript loader. argv[1] is JSON
 * [bindingPath], an absolute path: it loads only the native binding (everything it uses is
 * native), not the package's main module (see loadOpenCV).
 *
 * stdin:  one line of JSON [path, fourcc, fps, width, height] (absolute path), then frames, each
 *         a 12-byte header (width, height, byte length: u32 LE) then BGR bytes.
 *         End of input = close the file (or, before the settings line, exit without one).
 * stdout: one line per event, in order: "opened", then "written" per frame, then "closed";
 *         or "error <stage> <JSON message>" (stage: load, open, write).
 */

export type RecorderChildArgs = [bindingPath: string];
export type RecorderOpenSettings = [path: string, fourcc: string, fps: number, width: number, height: number];

/** The first thing the child reads: what to open. */
export function openLine(settings: RecorderOpenSettings): Buffer {
  return Buffer.from(`${JSON.stringify(settings)}\n`);
}

export const FRAME_HEADER_BYTES = 12;

export function frameHeader(width: number, height: number, byteLength: number): Buffer {
  const header = Buffer.alloc(FRAME_HEADER_BYTES);
  header.writeUInt32LE(width, 0);
  header.writeUInt32LE(height, 4);
  header.writeUInt32LE(byteLength, 8);
  return header;
}

export const RECORDER_CHILD_SOURCE = `
'use strict';
const [bindingPath] = JSON.parse(process.argv[1]);
const reply = (line) => process.stdout.write(line + '\\n');
const fail = (stage, thrown) => reply('error ' + stage + ' ' + JSON.stringify(thrown instanceof Error ? thrown.message : String(thrown)));
// The file ends when the parent closes stdin (or dies), not on the terminal's signals.
process.on('SIGINT', () => {});
process.on('SIGHUP', () => {});
let cv;
try {
  cv = require(bindingPath);
} catch (thrown) {
  fail('load', thrown);
  process.exit(3);
}
let writer;
let width = 0;
let height = 0;
function open(line) {
  try {
    const [path, fourcc, fps, w, h] = JSON.parse(line);
    width = w;
    height = h;
    writer = new cv.VideoWriter(path, cv.VideoWriter.fourcc(fourcc), fps, new cv.Size(width, height));
  } catch (thrown) {
    fail('open', thrown);
    process.exit(4);
  }
  reply('opened');
}

const settingsLine = [];

const header = Buffer.alloc(${FRAME_HEADER_BYTES});
let headerFilled = 0;
let frame;
let frameFilled = 0;
let frameWidth = 0;
let frameHeight = 0;
process.stdin.on('data', (chunk) => {
  let offset = 0;
  if (!writer) {
    const newline = chunk.indexOf(10);
    if (newline < 0) return void settingsLine.push(chunk);
    settingsLine.push(chunk.subarray(0, newline));
    open(Buffer.concat(settingsLine).toString('utf8'));
    offset = newline + 1;
  }
  while (offset < chunk.length) {
    if (!frame) {
      const take = Math.min(header.length - headerFilled, chunk.length - offset);
      chunk.copy(header, headerFilled, offset, offset + take);
      headerFilled += take;
      offset += take;
      if (headerFilled < header.length) return;
      frameWidth = header.readUInt32LE(0);
      frameHeight = header.readUInt32LE(4);
      frame = Buffer.allocUnsafe(header.readUInt32LE(8));
      frameFilled = 0;
      headerFilled = 0;
    }
    const take = Math.min(frame.length - frameFilled, chunk.length - offset);
    chunk.copy(frame, frameFilled, offset, offset + take);
    frameFilled += take;
    offset += take;
    if (frameFilled === frame.length) {
      writeFrame(frame, frameWidth, frameHeight);
      frame = undefined;
    }
  }
});
function writeFrame(data, frameWidth, frameHeight) {
  try {
    let mat = new cv.Mat(frameHeight, frameWidth, cv.CV_8UC3, data);
    if (frameWidth !== width || frameHeight !== height) {
      const shrinking = frameWidth * frameHeight > width * height;
      mat = mat.resize(new cv.Size(width, height), 0, 0, shrinking ? cv.INTER_AREA : cv.INTER_LINEAR);
    }
    writer.write(mat);
    reply('written');
  } catch (thrown) {
    fail('write', thrown);
  }
}
process.stdin.on('end', () => {
  if (!writer) process.exit(0); // started ahead of time and never used: no file
  writer.release();
  reply('closed');
  process.exit(0);
});
`;
