import { ChecksumError, SessionError, VersionMismatchError } from '@camstream/protocol';
import type { SessionEnd } from './connection';
import { NotASenderError } from './errors';
import { jitter, keepConnected, type ConnectionsEnd } from './reconnect';

/** Runs keepConnected over a script of connection ends; records what it did. */
async function run(ends: SessionEnd[], reconnect = true) {
  const log: string[] = [];
  const corrupt: Error[] = [];
  const stop = new AbortController();
  let attempts = 0;
  const end: ConnectionsEnd = await keepConnected(
    async (connected) => {
      const next = ends[attempts++];
      if (next === undefined) {
        stop.abort();
        return { kind: 'stopped' };
      }
      if (next.kind === 'bye') connected();
      return next;
    },
    { reconnect, backoffMs: { min: 1, max: 4 }, log: (line) => log.push(line), signal: stop.signal, onCorruptBytes: (e) => corrupt.push(e) },
  );
  return { end, attempts, log, corrupt };
}

const failed = (error: Error): SessionEnd => ({ kind: 'failed', connected: true, error });

describe('keepConnected', () => {
  it('comes back after failures, refusals and byes, logging why, until stopped', async () => {
    const { end, attempts, log } = await run([
      failed(new Error('no sender at 127.0.0.1:1 (connection refused)')),
      { kind: 'refused', code: 'ERR_FULL', reason: 'no room' },
      { kind: 'bye', reason: 'restarting' },
    ]);
    expect(end).toEqual({ kind: 'stopped' });
    expect(attempts).toBe(4);
    expect(log.filter((l) => !l.startsWith('reconnecting in'))).toEqual([
      'no sender at 127.0.0.1:1 (connection refused)',
      'the sender refused the connection: no room (ERR_FULL)',
      'the sender said bye: restarting',
    ]);
    expect(log.filter((l) => l.startsWith('reconnecting in'))).toHaveLength(3);
  });

  it('does not retry what cannot succeed: ERR_AUTH, ERR_STREAM_TOO_LARGE, ERR_VERSION, from either side', async () => {
    const finals: SessionEnd[] = [
      { kind: 'refused', code: 'ERR_AUTH', reason: 'authentication failed: wrong shared secret' },
      { kind: 'refused', code: 'ERR_VERSION', reason: 'version 3 is not 2' },
      failed(new SessionError('ERR_AUTH', 'wrong proof')),
      failed(new SessionError('ERR_STREAM_TOO_LARGE', 'too large')),
      failed(new VersionMismatchError('version 1 is not 2')),
    ];
    for (const final of finals) {
      const { end, attempts, log } = await run([final, { kind: 'bye', reason: 'never reached' }]);
      expect(attempts).toBe(1);
      expect(end).toMatchObject({ kind: 'failed' });
      expect(log).toEqual([]); // the caller reports it, once
    }
  });

  it('counts wrong bytes as corrupt, not a stranger or a network failure', async () => {
    const wrongBytes = [new ChecksumError('frame 1 payload CRC-32 is 0x1 but its header says 0x2'), new SessionError('ERR_OUT_OF_ORDER', 'x'), new SessionError('ERR_STREAM_MISMATCH', 'y')];
    const notCorrupt = [new NotASenderError('the peer is not a camstream sender', new ChecksumError('z')), new Error('the sender closed the connection'), new SessionError('ERR_HANDSHAKE', 'w')];
    const { corrupt } = await run([...wrongBytes, ...notCorrupt].map(failed));
    expect(corrupt).toEqual(wrongBytes);
  });

  it('without reconnect, the first end is the run: a bye finishes it', async () => {
    expect((await run([{ kind: 'bye', reason: 'done' }], false)).end).toEqual({ kind: 'sender-finished' });
    const error = new Error('the sender closed the connection');
    expect((await run([failed(error)], false)).end).toEqual({ kind: 'failed', error });
  });

  it('jitters the backoff by +-20 %', () => {
    expect(jitter(1000, () => 0)).toBe(800);
    expect(jitter(1000, () => 0.5)).toBe(1000);
    expect(jitter(1000, () => 1)).toBe(1200);
  });
});
