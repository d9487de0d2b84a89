import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { RawImage } from '@camstream/media';
import { startProcess, type AppProcess } from './processes';

/*
 * A headless X server for tests that open real windows. Needs the Debian packages xvfb
 * (Xvfb), x11-apps (xwd, for screenshots) and xdotool (sendKey).
 */

export interface XvfbOptions {
  /** Screen size (default 1280x800, 24-bit colour). */
  width?: number;
  height?: number;
  /** How long to wait for the server to come up (default 10 000 ms). */
  timeoutMs?: number;
}

export interface XvfbServer extends AsyncDisposable {
  /** The DISPLAY value, e.g. ":99". */
  readonly display: string;
  readonly process: AppProcess;
  /** The whole screen as BGR pixels, read with xwd (no OpenCV needed). */
  screenshot(): Promise<RawImage>;
  close(): Promise<void>;
}

const FIRST_DISPLAY = 90;
const LAST_DISPLAY = 599;

function displayLooksFree(display: number): boolean {
  return !existsSync(`/tmp/.X11-unix/X${display}`) && !existsSync(`/tmp/.X${display}-lock`);
}

function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs: number }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { encoding: 'buffer', maxBuffer: 256 * 1024 * 1024, timeout: options.timeoutMs, killSignal: 'SIGKILL', env: options.env },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${command} ${args.join(' ')} failed: ${error.message}\n${stderr.toString().trim()}`));
        else resolve(stdout);
      },
    );
  });
}

/**
 * Starts Xvfb on a free display number. Several test workers may race for the same number;
 * the loser's Xvfb exits at once (lock file taken) and the next number is tried.
 */
export async function startXvfb(options: XvfbOptions = {}): Promise<XvfbServer> {
  const { width = 1280, height = 800, timeoutMs = 10_000 } = options;
  const deadline = Date.now() + timeoutMs;
  // Start at a pseudo-random number so parallel workers rarely collide.
  let display = FIRST_DISPLAY + (process.pid % 200);
  const nextDisplay = () => (display >= LAST_DISPLAY ? FIRST_DISPLAY : display + 1);
  for (let attempt = 0; attempt < 20 && Date.now() < deadline; attempt++) {
    for (let skipped = 0; !displayLooksFree(display) && skipped <= LAST_DISPLAY - FIRST_DISPLAY; skipped++) display = nextDisplay();
    const server = startProcess('Xvfb', [`:${display}`, '-screen', '0', `${width}x${height}x24`, '-nolisten', 'tcp'], {
      name: `Xvfb :${display}`,
    });
    const socket = `/tmp/.X11-unix/X${display}`;
    while (!existsSync(socket) && !server.exitedWith && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    if (existsSync(socket) && !server.exitedWith) return xvfbServer(`:${display}`, server);
    await server.kill();
    display = nextDisplay();
  }
  throw new Error(`could not start Xvfb within ${timeoutMs} ms`);
}

function xvfbServer(display: string, server: AppProcess): XvfbServer {
  const close = async () => {
    await server.kill();
  };
  return {
    display,
    process: server,
    screenshot: async () => parseXwd(await run('xwd', ['-root', '-silent', '-display', display], { timeoutMs: 10_000 })),
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Position and width of a colour mask, e.g. 0xff0000 -> shift 16, 8 bits. */
function maskShape(mask: number): { shift: number; bits: number } {
  if (mask === 0) return { shift: 0, bits: 0 };
  let shift = 0;
  while (((mask >>> shift) & 1) === 0) shift++;
  let bits = 0;
  while (((mask >>> (shift + bits)) & 1) === 1) bits++;
  return { shift, bits };
}

/**
 * Converts an XWD dump (xwd's output: 25 header words, window name, colour map, pixels) of a
 * TrueColor screen with 24 or 32 bits per pixel into a BGR image.
 */
export function parseXwd(file: Buffer): RawImage {
  // The header is written big-endian; detect the other order anyway by its plausible size.
  let readWord = (index: number) => file.readUInt32BE(index * 4);
  if (readWord(0) > 0xffff) readWord = (index: number) => file.readUInt32LE(index * 4);
  const headerSize = readWord(0);
  const format = readWord(2);
  const width = readWord(4);
  const height = readWord(5);
  const pixelsLittleEndian = readWord(7) === 0;
  const bitsPerPixel = readWord(11);
  const bytesPerLine = readWord(12);
  const visualClass = readWord(13);
  const masks = [readWord(14), readWord(15), readWord(16)].map(maskShape);
  const colourCount = readWord(19);
  if (format !== 2 || (visualClass !== 4 && visualClass !== 5) || (bitsPerPixel !== 32 && bitsPerPixel !== 24)) {
    throw new Error(`unsupported XWD image: format ${format}, visual class ${visualClass}, ${bitsPerPixel} bits per pixel`);
  }
  const pixelsStart = headerSize + colourCount * 12;
  if (file.length < pixelsStart + bytesPerLine * height) throw new Error('XWD file is truncated');
  const bytesPerPixel = bitsPerPixel / 8;
  const data = Buffer.allocUnsafe(width * height * 3);
  const [red, green, blue] = masks as [{ shift: number; bits: number }, { shift: number; bits: number }, { shift: number; bits: number }];
  const scale = (value: number, shape: { shift: number; bits: number }) => {
    const raw = (value >>> shape.shift) & ((1 << shape.bits) - 1);
    return shape.bits >= 8 ? raw >>> (shape.bits - 8) : Math.round((raw * 255) / ((1 << shape.bits) - 1));
  };
  let out = 0;
  for (let y = 0; y < height; y++) {
    let offset = pixelsStart + y * bytesPerLine;
    for (let x = 0; x < width; x++, offset += bytesPerPixel) {
      let pixel: number;
      if (bytesPerPixel === 4) pixel = pixelsLittleEndian ? file.readUInt32LE(offset) : file.readUInt32BE(offset);
      else pixel = pixelsLittleEndian ? file.readUIntLE(offset, 3) : file.readUIntBE(offset, 3);
      data[out++] = scale(pixel, blue);
      data[out++] = scale(pixel, green);
      data[out++] = scale(pixel, red);
    }
  }
  return { width, height, channels: 3, data };
}

/**
 * Presses `key` (xdotool key name: "q", "Escape", "ctrl+c") in the first window whose name
 * matches `windowName` (a regular expression, as xdotool reads it), waiting up to timeoutMs
 * for that window to appear. The window gets the input focus first and the key goes through
 * XTEST, which toolkits treat as a real key press (unlike synthetic XSendEvent events).
 */
export async function sendKey(display: string, windowName: string, key: string, timeoutMs = 10_000): Promise<void> {
  const env = { ...process.env, DISPLAY: display };
  await run('xdotool', ['search', '--sync', '--name', windowName, 'windowfocus', '%1'], { env, timeoutMs });
  await run('xdotool', ['key', '--clearmodifiers', key], { env, timeoutMs });
}
