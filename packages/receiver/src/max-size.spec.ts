import { parseReceiverArgs } from './options';
import { DEFAULT_MAX_STREAM_SIZE } from '@camstream/protocol';

describe('--max-size', () => {
  it('defaults to the session limit, 8K UHD', () => {
    expect(DEFAULT_MAX_STREAM_SIZE).toEqual({ width: 7680, height: 4320 });
    expect(parseReceiverArgs([])).toMatchObject({ maxSize: DEFAULT_MAX_STREAM_SIZE });
  });

  it('takes WIDTHxHEIGHT up to the protocol limit', () => {
    expect(parseReceiverArgs(['--max-size', '1920x1080'])).toMatchObject({ maxSize: { width: 1920, height: 1080 } });
    expect(parseReceiverArgs(['--max-size', '16384x16384'])).toMatchObject({ maxSize: { width: 16384, height: 16384 } });
  });

  it('names what is wrong with a bad size', () => {
    expect(() => parseReceiverArgs(['--max-size', '1920'])).toThrow('--max-size "1920": expected WIDTHxHEIGHT, e.g. 3840x2160');
    expect(() => parseReceiverArgs(['--max-size', '0x100'])).toThrow("--max-size \"0x100\": width and height must be 1 to 16384 (the protocol's limit)");
    expect(() => parseReceiverArgs(['--max-size', '20000x100'])).toThrow(/--max-size "20000x100": width and height must be 1 to 16384/);
  });
});
