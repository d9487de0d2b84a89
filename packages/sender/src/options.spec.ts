import { parseSenderArgs, UsageError } from './options';

describe('parseSenderArgs', () => {
  it('has defaults a person can start with', () => {
    expect(parseSenderArgs([])).toMatchObject({
      host: '127.0.0.1',
      port: 9999,
      source: 'auto',
      width: undefined,
      height: undefined,
      fps: undefined,
      encoding: 'jpeg',
      quality: 80,
      maxViewers: 16,
    });
  });

  it('maps --codec raw to the raw-bgr encoding and reads sizes', () => {
    expect(parseSenderArgs(['--codec', 'raw', '--size', '640x480', '--port', '0'])).toMatchObject({ encoding: 'raw-bgr', width: 640, height: 480, port: 0 });
  });

  it('names the bad option and what was wrong', () => {
    expect(() => parseSenderArgs(['--size', '640*480'])).toThrow(/--size "640\*480": expected WIDTHxHEIGHT/);
    expect(() => parseSenderArgs(['--quality', '101'])).toThrow(/--quality "101": must be between 1 and 100/);
    expect(() => parseSenderArgs(['--codec', 'h264'])).toThrow(/--codec "h264"/);
    expect(() => parseSenderArgs(['--fps', '-3'])).toThrow(UsageError);
    expect(() => parseSenderArgs(['--max-viewers', '0'])).toThrow(/--max-viewers "0"/);
    expect(() => parseSenderArgs(['extra'])).toThrow(UsageError);
  });

  it('recognises --help', () => {
    expect(parseSenderArgs(['-h'])).toBe('help');
  });
});
