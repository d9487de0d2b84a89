import { parseSenderArgs } from './options';

describe('parseSenderArgs for H.264', () => {
  it('takes --codec h264 with a bitrate in bits per second, a CRF and a keyframe interval in seconds', () => {
    expect(parseSenderArgs(['--codec', 'h264'])).toMatchObject({ encoding: 'h264', bitrate: undefined, crf: undefined, keyframeIntervalSeconds: 2 });
    expect(parseSenderArgs(['--codec', 'h264', '--bitrate', '4M'])).toMatchObject({ bitrate: 4_000_000 });
    expect(parseSenderArgs(['--codec', 'h264', '--bitrate', '2.5M'])).toMatchObject({ bitrate: 2_500_000 });
    expect(parseSenderArgs(['--codec', 'h264', '--bitrate', '800k', '--crf', '23', '--keyframe-interval', '0.5'])).toMatchObject({
      bitrate: 800_000,
      crf: 23,
      keyframeIntervalSeconds: 0.5,
    });
  });

  it('names a bad bitrate, CRF or keyframe interval', () => {
    expect(() => parseSenderArgs(['--codec', 'h264', '--bitrate', '4 Mbit'])).toThrow(/^--bitrate "4 Mbit": expected bits per second, e.g. 4M, 2500k or 800000$/);
    expect(() => parseSenderArgs(['--codec', 'h264', '--bitrate', '50k'])).toThrow(/^--bitrate "50k": must be between 100k and 1000M bits per second$/);
    expect(() => parseSenderArgs(['--codec', 'h264', '--bitrate', '-4M'])).toThrow(/^--bitrate "-4M": must be between/);
    expect(() => parseSenderArgs(['--codec', 'h264', '--crf', '52'])).toThrow(/^--crf "52": must be between 0 and 51$/);
    expect(() => parseSenderArgs(['--codec', 'h264', '--keyframe-interval', '0'])).toThrow(/^--keyframe-interval "0": must be between 0.1 and 60 seconds$/);
  });

  it('refuses the H.264 options with another codec', () => {
    expect(() => parseSenderArgs(['--bitrate', '4M'])).toThrow(/^--bitrate is for --codec h264 only \(the codec is jpeg\)$/);
    expect(() => parseSenderArgs(['--codec', 'raw', '--keyframe-interval', '1'])).toThrow(/^--keyframe-interval is for --codec h264 only \(the codec is raw\)$/);
  });
});
