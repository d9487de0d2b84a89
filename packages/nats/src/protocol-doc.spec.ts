// Keeps PROTOCOL.md section 9 honest: its signing example is recomputed from the document's own
// bytes (the worked frame of section 8), and the names it gives are the ones the code uses.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MessageDecoder } from '@camstream/protocol';
import { newEpoch, parseEpoch } from './epoch';
import { SIGNATURE_LABEL, signaturePrefix, signMessage } from './signing';
import { cameraSubject, everyCameraSubject } from './subjects';
import { HEADER_EPOCH, HEADER_NONCE, HEADER_RECONNECTS, HEADER_SIGNATURE } from './wire';

const doc = readFileSync(join(__dirname, '..', '..', 'protocol', 'PROTOCOL.md'), 'utf8');

/** Section 8's annotated hex dump, as bytes. */
function workedFrame(): Buffer {
  const block = /<!-- worked-example:start -->([\s\S]*?)<!-- worked-example:end -->/.exec(doc)?.[1];
  if (!block) throw new Error('PROTOCOL.md has no worked example block');
  const bytes: number[] = [];
  for (const line of block.split('\n')) {
    const row = /^([0-9a-f]{4}) {2,}((?:[0-9a-f]{2} )*[0-9a-f]{2})(?: {2,}|$)/.exec(line);
    if (row) bytes.push(...row[2]!.split(' ').map((b) => parseInt(b, 16)));
  }
  return Buffer.from(bytes);
}

/** The signing example's table: field -> value (backticks removed). */
function signingExample(): Record<string, string> {
  const block = /<!-- nats-signature-example:start -->([\s\S]*?)<!-- nats-signature-example:end -->/.exec(doc)?.[1];
  if (!block) throw new Error('PROTOCOL.md has no NATS signing example');
  const fields: Record<string, string> = {};
  for (const line of block.split('\n')) {
    const cells = /^\| (.+?) \| (.+?) \|$/.exec(line);
    if (cells && cells[1] !== 'field' && !cells[1]!.startsWith('---')) fields[cells[1]!.replace(/`/g, '')] = cells[2]!.replace(/`/g, '');
  }
  return fields;
}

describe('PROTOCOL.md section 9 (Over NATS)', () => {
  it('has a signing example that this implementation computes byte for byte', () => {
    const example = signingExample();
    const message = workedFrame();
    expect(message).toHaveLength(174);
    expect(new MessageDecoder().push(message)).toHaveLength(1);
    expect(example['message']).toBe('the 174 bytes of section 8');
    expect(example['nonce']).toBe('(empty)');
    const fields = { subject: example['subject']!, epoch: example['epoch']!, reconnects: example['reconnects']!, nonce: '', message };
    const prefix = Buffer.from(signaturePrefix(fields), 'utf8');
    expect(example['text before the message (74 bytes, hex)']).toBe(prefix.toString('hex'));
    expect(prefix).toHaveLength(74);
    expect(signMessage(example['secret']!, fields)).toBe(example[HEADER_SIGNATURE]);
  });

  it('names the subjects, headers and label the code uses', () => {
    expect(doc).toContain(`| \`${cameraSubject('NAME', 'frames')}\` |`);
    expect(doc).toContain(`| \`${cameraSubject('NAME', 'hello')}\` |`);
    expect(doc).toContain(`| \`${cameraSubject('NAME', 'describe')}\` |`);
    expect(doc).toContain(`\`${everyCameraSubject('frames')}\` and \`${everyCameraSubject('hello')}\``);
    for (const header of [HEADER_EPOCH, HEADER_RECONNECTS, HEADER_SIGNATURE, HEADER_NONCE]) expect(doc).toContain(`| \`${header}\` |`);
    expect(doc).toContain(`"${SIGNATURE_LABEL}\\n" + SUBJECT + "\\n" + EPOCH + "\\n" + RECONNECTS + "\\n" + NONCE + "\\n"`);
  });

  it('describes epochs as the code makes them', () => {
    const epoch = newEpoch(1700000000000);
    expect(epoch).toMatch(/^1700000000000-[0-9a-f]{16}$/);
    expect(parseEpoch(epoch)).toEqual({ startMs: 1700000000000, id: epoch.slice(14) });
    expect(doc).toContain('`START-RANDOM`');
  });
});
