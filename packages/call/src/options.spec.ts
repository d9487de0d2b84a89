import { parseCallArgs, UsageError } from './options';

describe('parseCallArgs', () => {
  it('needs the partner, and has defaults a person can start with', () => {
    expect(() => parseCallArgs([])).toThrow(/^--partner: required: the other side's HOST:PORT, e\.g\. --partner 192\.168\.1\.20:9999$/);
    expect(parseCallArgs(['--partner', '192.168.1.20:9998'])).toMatchObject({
      partner: { host: '192.168.1.20', port: 9998 },
      host: '127.0.0.1',
      port: 9999,
      source: 'auto',
      loop: false,
      encoding: 'jpeg',
      quality: 80,
      adapt: true,
      display: 'auto',
      maxSize: { width: 7680, height: 4320 },
      secret: undefined,
      tls: undefined,
      partnerTls: undefined,
    });
    expect(parseCallArgs(['--partner', '[::1]:7000'])).toMatchObject({ partner: { host: '::1', port: 7000 } });
    expect(parseCallArgs(['--partner', 'b:9999', '--source', 'clip.avi', '--loop'])).toMatchObject({ source: 'clip.avi', loop: true });
  });

  it('takes the security options of both apps: a secret for both directions, TLS for each', () => {
    const options = parseCallArgs(['--partner', 'b:9999', '--tls-cert', 'c.pem', '--tls-key', 'k.pem', '--tls-ca', 'ca.pem'], { CAMSTREAM_SECRET: 'from the environment' });
    expect(options).toMatchObject({ secret: 'from the environment', tls: { certFile: 'c.pem', keyFile: 'k.pem' }, partnerTls: { caFile: 'ca.pem' } });
    expect(parseCallArgs(['--partner', 'b:9999', '--tls'])).toMatchObject({ partnerTls: {} });
    expect(() => parseCallArgs(['--partner', 'b:9999', '--tls-cert', 'c.pem'])).toThrow(/--tls-cert and --tls-key go together/);
    expect(() => parseCallArgs(['--partner', 'b:9999', '--secret', 'short'])).toThrow(/^--secret \(value hidden\): use at least 8 characters$/);
  });

  it('names the bad option and what was wrong', () => {
    expect(() => parseCallArgs(['--partner', 'nohost'])).toThrow(/^--partner "nohost": expected HOST:PORT/);
    expect(() => parseCallArgs(['--partner', 'b:70000'])).toThrow(/the port must be between 1 and 65535/);
    expect(() => parseCallArgs(['--partner', 'b:1', '--display', 'maybe'])).toThrow(/^--display "maybe"/);
    expect(() => parseCallArgs(['--partner', 'b:1', '--fps', '-1'])).toThrow(/^--fps "-1": must be between 0 and 1000$/);
    expect(() => parseCallArgs(['--partner', 'b:1', 'extra'])).toThrow(UsageError);
    expect(parseCallArgs(['-h'])).toBe('help');
  });
});
