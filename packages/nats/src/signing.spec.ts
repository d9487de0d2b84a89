import { compareEpochs, newEpoch, parseEpoch } from './epoch';
import { type SignedFields, signatureMatches, signMessage } from './signing';

const fields: SignedFields = { subject: 'camstream.porch.frames', epoch: '1700000000000-0123456789abcdef', reconnects: '0', nonce: '', message: Buffer.from('message') };

describe('signatures', () => {
  it('change with every field they cover', () => {
    const base = signMessage('k', fields);
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    const variants: SignedFields[] = [
      { ...fields, subject: 'camstream.yard.frames' },
      { ...fields, epoch: '1700000000000-0123456789abcdee' },
      { ...fields, reconnects: '1' },
      { ...fields, nonce: 'n' },
      { ...fields, message: Buffer.from('messagf') },
    ];
    for (const variant of variants) expect(signMessage('k', variant)).not.toBe(base);
    expect(signMessage('K', fields)).not.toBe(base);
  });

  it('match only the right signature, written in lower-case hex', () => {
    const signature = signMessage('k', fields);
    expect(signatureMatches('k', fields, signature)).toBe(true);
    expect(signatureMatches('other', fields, signature)).toBe(false);
    expect(signatureMatches('k', fields, signature.toUpperCase())).toBe(false);
    expect(signatureMatches('k', fields, signature.slice(1))).toBe(false);
    expect(signatureMatches('k', fields, '')).toBe(false);
  });
});

describe('epochs', () => {
  it('name a run by its start time and a random part, and order by them', () => {
    const a = newEpoch(1000);
    const b = newEpoch(1000);
    expect(a).not.toBe(b);
    expect(parseEpoch(a)?.startMs).toBe(1000);
    expect(compareEpochs(parseEpoch('5-0000000000000001')!, parseEpoch('10-0000000000000000')!)).toBeLessThan(0);
    expect(compareEpochs(parseEpoch('10-0000000000000001')!, parseEpoch('10-0000000000000000')!)).toBeGreaterThan(0);
    expect(compareEpochs(parseEpoch(a)!, parseEpoch(a)!)).toBe(0);
    for (const bad of [undefined, '', '10', '10-abc', '10-0123456789ABCDEF', '-0123456789abcdef', '1234567890123456-0123456789abcdef']) expect(parseEpoch(bad)).toBeUndefined();
  });
});
