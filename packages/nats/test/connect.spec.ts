import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort, type NatsServer, startNatsServer } from '@camstream/testkit';
import { connectNats, type NatsTransportError } from '../src';

/** The error a promise rejects with (fails the test if it resolves). */
async function failure(promise: Promise<unknown>): Promise<NatsTransportError> {
  try {
    const link = await promise;
    await (link as { close?: () => Promise<void> }).close?.();
  } catch (error) {
    return error as NatsTransportError;
  }
  throw new Error('expected the connection to fail');
}

describe('connectNats against a server with a user and password', () => {
  let server: NatsServer;
  beforeAll(async () => {
    server = await startNatsServer({ user: 'alice', password: 'p@ss:word' });
  });
  afterAll(() => server.dispose());

  it('fails with a clear message, not a stack, when the password is wrong', async () => {
    const error = await failure(connectNats({ url: `nats://alice:wrong@127.0.0.1:${server.port}`, env: {} }));
    expect(error.code).toBe('ERR_NATS_AUTH');
    expect(error.message).toBe(`NATS at 127.0.0.1:${server.port} refused the credentials: authorization violation (user "alice" from the URL)`);
  });

  it('fails the same way with no credentials at all', async () => {
    const error = await failure(connectNats({ url: server.url, env: {} }));
    expect(error.code).toBe('ERR_NATS_AUTH');
    expect(error.message).toBe(`NATS at 127.0.0.1:${server.port} refused the credentials: authorization violation (no credentials)`);
  });

  it('connects with the user and password in the URL (percent-encoded) or in NATS_USER / NATS_PASSWORD', async () => {
    const fromUrl = await connectNats({ url: `nats://alice:${encodeURIComponent('p@ss:word')}@127.0.0.1:${server.port}`, env: {} });
    expect(fromUrl.server).toBe(`127.0.0.1:${server.port}`);
    await fromUrl.close();
    const fromEnv = await connectNats({ url: server.url, env: { NATS_USER: 'alice', NATS_PASSWORD: 'p@ss:word' } });
    expect(fromEnv.connected).toBe(true);
    await fromEnv.close();
    const wrongEnv = await failure(connectNats({ url: server.url, env: { NATS_USER: 'alice', NATS_PASSWORD: 'nope' } }));
    expect(wrongEnv.message).toContain('refused the credentials: authorization violation (user "alice" from NATS_USER)');
  });
});

describe('connectNats against a server with a token', () => {
  it('takes the token from the URL or NATS_TOKEN, and names a wrong one', async () => {
    await using server = await startNatsServer({ token: 's3cret' });
    const fromUrl = await connectNats({ url: `nats://s3cret@127.0.0.1:${server.port}`, env: {} });
    await fromUrl.close();
    const fromEnv = await connectNats({ url: server.url, env: { NATS_TOKEN: 's3cret' } });
    await fromEnv.close();
    const wrong = await failure(connectNats({ url: server.url, env: { NATS_TOKEN: 'guess' } }));
    expect(wrong.code).toBe('ERR_NATS_AUTH');
    expect(wrong.message).toContain('(the token from NATS_TOKEN)');
  });
});

describe('connectNats over TLS', () => {
  let server: NatsServer;
  beforeAll(async () => {
    server = await startNatsServer({ tls: true });
  });
  afterAll(() => server.dispose());

  it('connects to tls:// with the CA file that signed the server certificate (caFile or NATS_CA)', async () => {
    const withOption = await connectNats({ url: server.url, caFile: server.caFile, env: {} });
    expect(withOption.connected).toBe(true);
    await withOption.close();
    const withEnv = await connectNats({ url: server.url, env: { NATS_CA: server.caFile } });
    await withEnv.close();
  });

  it('refuses a server whose certificate no known CA signed, saying it is TLS that failed', async () => {
    const error = await failure(connectNats({ url: server.url, env: {} }));
    expect(error.code).toBe('ERR_NATS_TLS');
    expect(error.message).toMatch(new RegExp(`^TLS with NATS at 127\\.0\\.0\\.1:${server.port} failed: .*certificate.*; check tls:// and the CA file \\(NATS_CA\\)$`));
  });

  it('asks for TLS from a server without it: a clear refusal', async () => {
    await using plain = await startNatsServer();
    const error = await failure(connectNats({ url: `tls://127.0.0.1:${plain.port}`, env: {} }));
    expect(error.code).toBe('ERR_NATS_TLS');
    expect(error.message).toContain(`TLS with NATS at 127.0.0.1:${plain.port} failed`);
    expect(error.message).toContain('the server does not offer TLS');
  });
});

describe('connectNats failures before any server is involved', () => {
  it('says a server is not reachable when nothing listens', async () => {
    const port = await freePort();
    const error = await failure(connectNats({ url: `nats://127.0.0.1:${port}`, env: {} }));
    expect(error.code).toBe('ERR_NATS_UNREACHABLE');
    expect(error.message).toBe(`NATS at 127.0.0.1:${port} is not reachable: connection refused`);
  });

  it('refuses URLs it cannot use, without showing the password', async () => {
    const bad = async (url: string) => failure(connectNats({ url, env: {} }));
    expect((await bad('http://h:1')).message).toContain('scheme http:// is not nats:// or tls://');
    expect((await bad('nats://bob:hunter2@h:1/path')).message).toBe(
      'NATS URL "nats://bob:***@h:1/path" is not valid: it has a path (/path); expected nats://[user:password@]host[:port] or tls://..., several separated by commas',
    );
    expect((await bad('nats://a:1,tls://b:2')).message).toContain('it mixes nats:// and tls:// servers');
    expect((await bad('nats://a:1,')).code).toBe('ERR_NATS_URL');
  });

  it('names a creds or CA file it cannot read', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'camstream-nats-creds-'));
    try {
      const missing = await failure(connectNats({ url: 'nats://127.0.0.1:1', credsFile: path.join(dir, 'none.creds'), env: {} }));
      expect(missing.code).toBe('ERR_NATS_FILE');
      expect(missing.message).toMatch(/^cannot read the NATS creds file .*none\.creds: ENOENT/);
      const junk = path.join(dir, 'junk.creds');
      writeFileSync(junk, 'not a creds file\n');
      const unreadable = await failure(connectNats({ url: 'nats://127.0.0.1:1', credsFile: junk, env: {} }));
      expect(unreadable.code).toBe('ERR_NATS_FILE');
      expect(unreadable.message).toBe(`the NATS creds file ${junk} is not a creds file: unable to parse credentials`);
      const noCa = await failure(connectNats({ url: 'tls://127.0.0.1:1', env: { NATS_CA: path.join(dir, 'none.pem') } }));
      expect(noCa.message).toMatch(/^cannot read the NATS CA file .*none\.pem: ENOENT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
