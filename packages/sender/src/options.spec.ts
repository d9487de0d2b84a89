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
      adapt: true,
    });
  });

  it('takes --adapt on|off, and names a bad value', () => {
    expect(parseSenderArgs(['--adapt', 'off'])).toMatchObject({ adapt: false });
    expect(parseSenderArgs(['--adapt', 'on'])).toMatchObject({ adapt: true });
    expect(() => parseSenderArgs(['--adapt', 'maybe'])).toThrow(/^--adapt "maybe": expected on or off$/);
  });

  it('sends --name as the sender\'s name', () => {
    expect(parseSenderArgs(['--name', 'porch camera'])).toMatchObject({ name: 'porch camera' });
  });

  it('maps --codec raw to the raw-bgr encoding and reads sizes', () => {
    expect(parseSenderArgs(['--codec', 'raw', '--size', '640x480', '--port', '0'])).toMatchObject({ encoding: 'raw-bgr', width: 640, height: 480, port: 0 });
  });

  it('names the bad option and what was wrong', () => {
    expect(() => parseSenderArgs(['--size', '640*480'])).toThrow(/--size "640\*480": expected WIDTHxHEIGHT/);
    expect(() => parseSenderArgs(['--quality', '101'])).toThrow(/--quality "101": must be between 1 and 100/);
    expect(() => parseSenderArgs(['--codec', 'h265'])).toThrow(/--codec "h265"/);
    expect(() => parseSenderArgs(['--fps', '-3'])).toThrow(UsageError);
    expect(() => parseSenderArgs(['--max-viewers', '0'])).toThrow(/--max-viewers "0"/);
    expect(() => parseSenderArgs(['extra'])).toThrow(UsageError);
  });

  it('gives the range, not a parser message, for a negative number after any numeric option', () => {
    expect(() => parseSenderArgs(['--fps', '-1'])).toThrow(/^--fps "-1": must be between 0 and 1000$/);
    expect(() => parseSenderArgs(['--fps=-1'])).toThrow(/^--fps "-1": must be between 0 and 1000$/);
    expect(() => parseSenderArgs(['--port', '-80'])).toThrow(/^--port "-80": must be between 0 and 65535$/);
    expect(() => parseSenderArgs(['--quality', '-5'])).toThrow(/^--quality "-5": must be between 1 and 100$/);
    expect(() => parseSenderArgs(['--max-viewers', '-2'])).toThrow(/^--max-viewers "-2": must be between 1 and 10000$/);
    expect(() => parseSenderArgs(['--size', '-640x480'])).toThrow(/^--size "-640x480": expected WIDTHxHEIGHT/);
    // Not a number: still the parser's own message about a value that looks like an option.
    expect(() => parseSenderArgs(['--source', '-x'])).toThrow(/--source/);
  });

  it('takes --wire camstream (the default) or tutorial, and refuses on the tutorial wire what it cannot carry', () => {
    expect(parseSenderArgs([])).toMatchObject({ wire: 'camstream' });
    expect(parseSenderArgs(['--wire', 'tutorial', '--port', '0', '--max-viewers', '4'])).toMatchObject({ wire: 'tutorial', port: 0, maxViewers: 4 });
    expect(() => parseSenderArgs(['--wire', 'pickle'])).toThrow(/^--wire "pickle": expected camstream or tutorial$/);
    expect(() => parseSenderArgs(['--wire', 'tutorial', '--secret', 'longenough', '--codec', 'raw'])).toThrow(
      /^--codec, --secret: not on the tutorial wire, which carries raw BGR pickles with no authentication, TLS, quality rungs, names or NATS \(use --wire camstream\)$/,
    );
    expect(() => parseSenderArgs(['--wire', 'tutorial', '--tls-cert', 'c.pem', '--tls-key', 'k.pem'])).toThrow(/^--tls-cert, --tls-key: not on the tutorial wire/);
    // One wire per sender process: NATS carries camstream's frames, not the tutorial's.
    expect(() => parseSenderArgs(['--wire', 'tutorial', '--nats', 'nats://127.0.0.1', '--camera', 'porch'])).toThrow(/^--nats, --camera: not on the tutorial wire/);
    // A secret from the environment protects camstream receivers only; the tutorial wire has none.
    expect(parseSenderArgs(['--wire', 'tutorial'], { CAMSTREAM_SECRET: 'from the environment' })).toMatchObject({ wire: 'tutorial', secret: undefined });
    expect(parseSenderArgs([], { CAMSTREAM_SECRET: 'from the environment' })).toMatchObject({ wire: 'camstream', secret: 'from the environment' });
  });

  it('takes --nats with --camera, its creds and CA files, and --metrics', () => {
    expect(parseSenderArgs(['--nats', 'nats://127.0.0.1:4222', '--camera', 'porch', '--nats-ca', 'ca.pem', '--metrics', '9100'])).toMatchObject({
      nats: { url: 'nats://127.0.0.1:4222', camera: 'porch', credsFile: undefined, caFile: 'ca.pem' },
      metricsPort: 9100,
    });
    expect(parseSenderArgs([])).toMatchObject({ nats: undefined, metricsPort: undefined });
  });

  it('says which NATS option is missing its partner', () => {
    expect(() => parseSenderArgs(['--nats', 'nats://127.0.0.1'])).toThrow(/^--nats needs --camera NAME/);
    expect(() => parseSenderArgs(['--camera', 'porch'])).toThrow(/^--camera is for publishing to NATS: give --nats URL too$/);
    expect(() => parseSenderArgs(['--nats-creds', 'x.creds'])).toThrow(/^--nats-creds is for publishing to NATS/);
    expect(() => parseSenderArgs(['--metrics', '-1'])).toThrow(/^--metrics "-1": must be between 0 and 65535$/);
  });

  it('recognises --help', () => {
    expect(parseSenderArgs(['-h'])).toBe('help');
  });
});
