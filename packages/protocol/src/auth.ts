import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Shared-secret challenge-response. Each side sends a fresh 32-byte nonce; the receiver proves it
 * knows the secret with HMAC-SHA256(secret, "camstream/1 receiver" + both nonces), the sender
 * answers with the same over "camstream/1 sender", so neither proof can be replayed or reflected,
 * and the secret never crosses the wire.
 */
export function newNonce(): string {
  return randomBytes(32).toString('base64');
}

export function receiverProof(secret: string, senderNonce: string, receiverNonce: string): string {
  return proof('receiver', secret, senderNonce, receiverNonce);
}

export function senderProof(secret: string, senderNonce: string, receiverNonce: string): string {
  return proof('sender', secret, senderNonce, receiverNonce);
}

/** Constant-time comparison of two hex proofs. */
export function proofsMatch(expected: string, received: string): boolean {
  const a = Buffer.from(expected, 'hex');
  const b = Buffer.from(received, 'hex');
  return a.length === 32 && b.length === 32 && timingSafeEqual(a, b);
}

function proof(role: 'sender' | 'receiver', secret: string, senderNonce: string, receiverNonce: string): string {
  return createHmac('sha256', secret).update(`camstream/1 ${role}\n${senderNonce}\n${receiverNonce}`).digest('hex');
}
