import { errors } from '@nats-io/transport-node';
import { describeFailure, parseNatsUrl, redact } from './connection';

describe('parseNatsUrl', () => {
  it('reads servers, TLS and credentials', () => {
    expect(parseNatsUrl('nats://127.0.0.1:4222')).toEqual({ servers: ['127.0.0.1:4222'], tls: false });
    expect(parseNatsUrl('nats.example.org')).toEqual({ servers: ['nats.example.org:4222'], tls: false });
    expect(parseNatsUrl('tls://nats.example.org:4443')).toEqual({ servers: ['nats.example.org:4443'], tls: true });
    expect(parseNatsUrl('nats://alice:p%40ss@h:1')).toEqual({ servers: ['h:1'], tls: false, user: 'alice', password: 'p@ss' });
    expect(parseNatsUrl('nats://s3cret@h')).toEqual({ servers: ['h:4222'], tls: false, token: 's3cret' });
    expect(parseNatsUrl('nats://u:p@a:1, nats://u:p@b:2 ,c:3')).toEqual({ servers: ['a:1', 'b:2', 'c:3'], tls: false, user: 'u', password: 'p' });
  });

  it('refuses what it cannot use, with the code ERR_NATS_URL and no password in the message', () => {
    const why = (url: string) => {
      try {
        parseNatsUrl(url);
      } catch (error) {
        expect((error as { code: string }).code).toBe('ERR_NATS_URL');
        return (error as Error).message;
      }
      throw new Error(`${url} was accepted`);
    };
    expect(why('ws://h:1')).toContain('scheme ws:// is not nats:// or tls://');
    expect(why('nats://:1')).toContain('is not a URL');
    expect(why('nats://h:1?x=1')).toContain('it has a query or fragment');
    expect(why('nats://u:p@a:1,nats://u:q@b:2')).toBe(
      'NATS URL "nats://u:***@a:1,nats://u:***@b:2" is not valid: its servers carry different credentials; expected nats://[user:password@]host[:port] or tls://..., several separated by commas',
    );
    expect(why('nats://t0k3n@h:1/x')).not.toContain('t0k3n');
  });
});

describe('redact', () => {
  it('hides passwords and tokens, keeps user names', () => {
    expect(redact('nats://alice:secret@h:1,nats://token@h:2')).toBe('nats://alice:***@h:1,nats://***@h:2');
    expect(redact('nats://h:1')).toBe('nats://h:1');
  });
});

describe('describeFailure', () => {
  it('turns what nats.js throws into one clear sentence naming the server', () => {
    expect(describeFailure(new errors.AuthorizationError('Authorization Violation'), 'h:1', 'no credentials').message).toBe(
      'NATS at h:1 refused the credentials: authorization violation (no credentials)',
    );
    expect(describeFailure(new errors.ConnectionError('connection refused'), 'h:1', '').code).toBe('ERR_NATS_UNREACHABLE');
    expect(describeFailure(new Error('getaddrinfo ENOTFOUND nowhere'), 'nowhere:1', '').message).toBe('NATS at nowhere:1 is not reachable: unknown host');
    expect(describeFailure(new errors.TimeoutError(), 'h:1', '').message).toBe('NATS at h:1 did not answer in time');
    expect(describeFailure(new Error('self-signed certificate'), 'h:1', '').code).toBe('ERR_NATS_TLS');
  });
});
