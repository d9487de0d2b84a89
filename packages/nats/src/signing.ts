import { createHmac, timingSafeEqual } from 'node:crypto';

/*
 * Message signatures (PROTOCOL.md, "Over NATS", signing): with a shared secret, every frame and
 * announcement carries HMAC-SHA256 over what a receiver relies on: the subject (so a frame cannot
 * be moved to another camera), the epoch and the publisher's reconnect count (its NATS headers),
 * the describe request's nonce (so a reply cannot be replayed to another request), and the whole
 * camstream message, payload included (its CRC-32 detects accidents, not forgeries).
 */

/** Names this signing scheme; a change to what is signed changes the label. */
export const SIGNATURE_LABEL = 'camstream-nats/1';

export interface SignedFields {
  subject: string;
  epoch: string;
  /** The Camstream-Reconnects header's text. */
  reconnects: string;
  /** The describe request's nonce for a reply; '' for frames and announcements. */
  nonce: string;
  /** The camstream message: 8-byte length, header length, JSON header, payload. */
  message: Uint8Array;
}

const SIGNATURE = /^[0-9a-f]{64}$/;

/** The text before the message bytes in what is signed. No field may contain a newline (none can: subjects, epochs, counts and nonces cannot). */
export function signaturePrefix(fields: Omit<SignedFields, 'message'>): string {
  return `${SIGNATURE_LABEL}\n${fields.subject}\n${fields.epoch}\n${fields.reconnects}\n${fields.nonce}\n`;
}

/** Lower-case hex HMAC-SHA256(key = the secret as UTF-8, message = prefix + message bytes). */
export function signMessage(secret: string, fields: SignedFields): string {
  return createHmac('sha256', secret).update(signaturePrefix(fields), 'utf8').update(fields.message).digest('hex');
}

/** Whether `signature` is the right one for these fields (compared in constant time). */
export function signatureMatches(secret: string, fields: SignedFields, signature: string): boolean {
  if (!SIGNATURE.test(signature)) return false;
  return timingSafeEqual(Buffer.from(signMessage(secret, fields), 'latin1'), Buffer.from(signature, 'latin1'));
}
