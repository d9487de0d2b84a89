// Keeps PROTOCOL.md honest: its worked example must be the golden raw frame and must decode.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from './checksum';
import { PROTOCOL_VERSION } from './constants';
import { MessageDecoder } from './decoder';
import { toHex, fromHex } from './testing/bytes';
import { h264Keyframe, rawFrame } from './testing/vectors';

const doc = readFileSync(join(__dirname, '..', 'PROTOCOL.md'), 'utf8');

/** Reads the annotated hex table: "offset  bytes  meaning", checking each offset follows the last. */
function workedExampleBytes(): Buffer {
  const block = /<!-- worked-example:start -->([\s\S]*?)<!-- worked-example:end -->/.exec(doc)?.[1];
  if (!block) throw new Error('PROTOCOL.md has no worked example block');
  const bytes: number[] = [];
  for (const line of block.split('\n')) {
    const row = /^([0-9a-f]{4}) {2,}((?:[0-9a-f]{2} )*[0-9a-f]{2})(?: {2,}|$)/.exec(line);
    if (!row) continue;
    expect(parseInt(row[1] as string, 16)).toBe(bytes.length);
    bytes.push(...(row[2] as string).split(' ').map((b) => parseInt(b, 16)));
  }
  return Buffer.from(bytes);
}

describe('PROTOCOL.md', () => {
  it('has a worked example that is byte for byte the golden raw frame', () => {
    expect(toHex(workedExampleBytes())).toBe(toHex(fromHex(rawFrame.hex)));
  });

  it('has a worked example that decodes to the frame it describes', () => {
    const [message, ...rest] = new MessageDecoder().push(workedExampleBytes());
    expect(rest).toEqual([]);
    expect(message?.header).toEqual(rawFrame.header);
    expect(toHex(message?.payload ?? Buffer.alloc(0))).toBe('0000ff00ff00');
  });

  it('has an h264 example (section 4.6) that is the golden h264 keyframe, header and payload', () => {
    const block = /<!-- h264-example:start -->([\s\S]*?)<!-- h264-example:end -->/.exec(doc)?.[1];
    if (!block) throw new Error('PROTOCOL.md has no h264 example block');
    const [headerBlock, payloadBlock] = [...block.matchAll(/```\n([\s\S]*?)```/g)].map((m) => m[1] as string);
    expect(headerBlock?.trim()).toBe(JSON.stringify(h264Keyframe.header));
    // Each payload line: hex bytes, then (after two spaces or more) what they are.
    const payloadHex = (payloadBlock ?? '')
      .split('\n')
      .map((line) => /^((?:[0-9a-f]{2} ?)+?)(?: {2,}|$)/.exec(line.trimStart())?.[1] ?? '')
      .join('')
      .replace(/ /g, '');
    expect(payloadHex).toBe(h264Keyframe.payloadHex);
    const [message] = new MessageDecoder().push(fromHex(h264Keyframe.hex));
    expect(message?.header).toEqual(h264Keyframe.header);
    expect(toHex(message?.payload ?? Buffer.alloc(0))).toBe(h264Keyframe.payloadHex);
    expect(doc).toContain('237 bytes: `N = 229`, `H = 172`, a 53-byte payload');
    expect(fromHex(h264Keyframe.hex).length).toBe(237);
  });

  it('names the version the code speaks wherever it says which version a hello carries', () => {
    const stated = [
      /^# camstream wire protocol, version (\d+)$/m,
      /^\| `version` \| integer \| `(\d+)` \|$/m,
      /whose `version` is not `(\d+)` is `ERR_VERSION`/,
    ].map((where) => where.exec(doc)?.[1]);
    expect(stated).toEqual(stated.map(() => String(PROTOCOL_VERSION)));
  });

  it('states CRC-32 check values that hold', () => {
    expect(doc).toContain('`123456789` is `3421780262` (`0xCBF43926`)');
    expect(crc32(Buffer.from('123456789', 'ascii'))).toBe(3421780262);
    expect(crc32(Buffer.alloc(0))).toBe(0);
    expect(crc32(fromHex('0000ff00ff00'))).toBe(4242758176);
  });
});
