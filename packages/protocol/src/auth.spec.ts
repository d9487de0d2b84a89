import { newNonce, proofsMatch, receiverProof, senderProof } from './auth';
import { parseHeader } from './schema';

describe('shared-secret authentication', () => {
  const senderNonce = newNonce();
  const receiverNonce = newNonce();

  it('makes fresh 32-byte nonces that the schema accepts', () => {
    expect(Buffer.from(senderNonce, 'base64')).toHaveLength(32);
    expect(senderNonce).not.toBe(receiverNonce);
    expect(parseHeader({ type: 'challenge', method: 'hmac-sha256', nonce: senderNonce })).toMatchObject({ type: 'challenge' });
  });

  it('matches a proof made with the same secret and nonces, and only that one', () => {
    const proof = receiverProof('s3cret', senderNonce, receiverNonce);
    expect(parseHeader({ type: 'auth', mac: proof })).toEqual({ type: 'auth', mac: proof });
    expect(proofsMatch(receiverProof('s3cret', senderNonce, receiverNonce), proof)).toBe(true);
    expect(proofsMatch(receiverProof('wrong', senderNonce, receiverNonce), proof)).toBe(false);
    expect(proofsMatch(receiverProof('s3cret', newNonce(), receiverNonce), proof)).toBe(false);
  });

  it('cannot reflect the receiver’s proof back as the sender’s', () => {
    expect(senderProof('k', senderNonce, receiverNonce)).not.toBe(receiverProof('k', senderNonce, receiverNonce));
  });

  it('compares nothing of the wrong length as a match', () => {
    expect(proofsMatch('ab', 'ab')).toBe(false);
    expect(proofsMatch(receiverProof('k', senderNonce, receiverNonce), '')).toBe(false);
  });

  it('is plain HMAC-SHA256 over the documented message (known answer)', () => {
    // HMAC-SHA256(key "k", "camstream/1 receiver\nA\nB"), computed independently with openssl.
    expect(receiverProof('k', 'A', 'B')).toBe(KNOWN_ANSWER);
  });
});

const KNOWN_ANSWER = '783915ff18bfd510d478fc244495696a54abdf41940e31237b54ae0e5e4e6567';
