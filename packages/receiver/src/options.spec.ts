import { parseReceiverArgs, UsageError } from './options';

describe('parseReceiverArgs', () => {
  it('defaults to the local sender on the tutorial port, with reconnect on', () => {
    expect(parseReceiverArgs([])).toMatchObject({ host: '127.0.0.1', port: 9999, display: 'auto', reconnect: true });
  });

  it('takes HOST[:PORT] as a positional, and options win over it', () => {
    expect(parseReceiverArgs(['10.1.2.3:7000'])).toMatchObject({ host: '10.1.2.3', port: 7000 });
    expect(parseReceiverArgs(['[::1]:7001'])).toMatchObject({ host: '::1', port: 7001 });
    expect(parseReceiverArgs(['cam.local'])).toMatchObject({ host: 'cam.local', port: 9999 });
    expect(parseReceiverArgs(['cam.local:7000', '--port', '7002'])).toMatchObject({ host: 'cam.local', port: 7002 });
  });

  it('names the bad option and what was wrong', () => {
    expect(() => parseReceiverArgs(['--port', '70000'])).toThrow(/--port "70000": must be between 1 and 65535/);
    expect(() => parseReceiverArgs(['--display', 'maybe'])).toThrow(UsageError);
    expect(() => parseReceiverArgs(['--display', 'maybe'])).toThrow(/--display "maybe"/);
    expect(() => parseReceiverArgs(['--frames', '0'])).toThrow(/--frames "0": must be at least 1/);
    expect(() => parseReceiverArgs(['--duration', 'soon'])).toThrow(/--duration "soon"/);
    expect(() => parseReceiverArgs(['--bogus'])).toThrow(/bogus/);
    expect(() => parseReceiverArgs(['a', 'b', '--port', '1'])).toThrow(/^--host and --port name one sender; give several as HOST:PORT arguments/);
    expect(() => parseReceiverArgs(['a:1', 'b:x'])).toThrow(/^sender "b:x": port "x" expected a whole number$/);
  });

  it('gives the range, not a parser message, for a negative number after any numeric option', () => {
    expect(() => parseReceiverArgs(['--port', '-1'])).toThrow(/^--port "-1": must be between 1 and 65535$/);
    expect(() => parseReceiverArgs(['--http', '-8080'])).toThrow(/^--http "-8080": must be between 0 and 65535$/);
    expect(() => parseReceiverArgs(['--frames', '-5'])).toThrow(/^--frames "-5": must be at least 1$/);
    expect(() => parseReceiverArgs(['--duration', '-2.5'])).toThrow(/^--duration "-2.5": must be more than 0$/);
    expect(() => parseReceiverArgs(['--duration=-1'])).toThrow(/^--duration "-1": must be more than 0$/);
  });

  it('takes several HOST:PORT arguments as several senders, and one as today', () => {
    expect(parseReceiverArgs(['10.0.0.1:7000', 'cam.local', '[::1]:7002'])).toMatchObject({
      senders: [{ host: '10.0.0.1', port: 7000 }, { host: 'cam.local', port: 9999 }, { host: '::1', port: 7002 }],
      host: '10.0.0.1',
      port: 7000,
    });
    expect(parseReceiverArgs(['cam.local:7000'])).toMatchObject({ senders: [{ host: 'cam.local', port: 7000 }] });
    expect(parseReceiverArgs([])).toMatchObject({ senders: [{ host: '127.0.0.1', port: 9999 }], nats: undefined });
  });

  it('watches NATS alone, or beside TCP senders when they are named', () => {
    expect(parseReceiverArgs(['--nats', 'nats://127.0.0.1:4222', '--camera', '*'])).toMatchObject({
      senders: [],
      nats: { url: 'nats://127.0.0.1:4222', cameras: '*', credsFile: undefined, caFile: undefined },
    });
    expect(parseReceiverArgs(['--nats', 'nats://h', '--camera', 'a,b', '127.0.0.1:9000'])).toMatchObject({ senders: [{ host: '127.0.0.1', port: 9000 }] });
    expect(parseReceiverArgs(['--nats', 'nats://h', '--camera', 'a', '--port', '9001'])).toMatchObject({ senders: [{ host: '127.0.0.1', port: 9001 }] });
    expect(() => parseReceiverArgs(['--nats', 'nats://h'])).toThrow(/^--nats needs --camera/);
    expect(() => parseReceiverArgs(['--camera', 'a'])).toThrow(/^--camera is for watching NATS: give --nats URL too$/);
  });

  it('parses the script options', () => {
    expect(parseReceiverArgs(['--frames', '25', '--duration', '2.5', '--no-reconnect', '--record', 'x.avi', '--stats-json'])).toMatchObject({
      frames: 25,
      durationS: 2.5,
      reconnect: false,
      record: 'x.avi',
      statsJson: true,
    });
    expect(parseReceiverArgs(['--help'])).toBe('help');
  });

  it('takes --wire camstream (the default) or tutorial, and refuses on the tutorial wire what it cannot carry', () => {
    expect(parseReceiverArgs([])).toMatchObject({ wire: 'camstream' });
    expect(parseReceiverArgs(['--wire', 'tutorial', '10.0.0.5:9999', '--record', 'x.avi'])).toMatchObject({ wire: 'tutorial', host: '10.0.0.5', port: 9999, record: 'x.avi', secret: undefined, tls: undefined });
    expect(() => parseReceiverArgs(['--wire', 'pickle'])).toThrow(/^--wire "pickle": expected camstream or tutorial$/);
    expect(() => parseReceiverArgs(['--wire', 'tutorial', '--secret', 'longenough', '--tls'])).toThrow(
      /^--secret, --tls: not on the tutorial wire, which has no handshake, authentication, TLS or NATS \(use --wire camstream\)$/,
    );
    expect(() => parseReceiverArgs(['--wire', 'tutorial', '--name', 'me'])).toThrow(/^--name: not on the tutorial wire/);
    expect(() => parseReceiverArgs(['--wire', 'tutorial', '--nats', 'nats://127.0.0.1', '--camera', 'porch'])).toThrow(/^--nats, --camera: not on the tutorial wire/);
    // Several tutorial streamers make a hub, as several camstream senders do.
    expect(parseReceiverArgs(['--wire', 'tutorial', '127.0.0.1:9999', '127.0.0.1:9998'])).toMatchObject({
      wire: 'tutorial',
      senders: [
        { host: '127.0.0.1', port: 9999 },
        { host: '127.0.0.1', port: 9998 },
      ],
    });
    // A secret from the environment is for camstream senders; the tutorial wire has none.
    expect(parseReceiverArgs(['--wire', 'tutorial'], { CAMSTREAM_SECRET: 'from the environment' })).toMatchObject({ secret: undefined });
    expect(parseReceiverArgs(['--name', 'me'])).toMatchObject({ name: 'me' });
  });
});
