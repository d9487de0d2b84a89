import {
  type DecoderOptions,
  encodeMessage,
  type HelloHeader,
  LengthMismatchError,
  type Message,
  MessageDecoder,
  type PreparedFrame,
} from '@camstream/protocol';

/*
 * A NATS message's body is exactly one camstream message of PROTOCOL.md section 1 (8-byte length,
 * header length, JSON header, payload), so it is checked with the same decoder and schema as on TCP.
 * What NATS adds goes in NATS message headers.
 */

/** The sender run the message belongs to (epoch.ts). On frames, announcements and describe replies. */
export const HEADER_EPOCH = 'Camstream-Epoch';
/** How many times the publisher reconnected to NATS in this run, decimal. On frames, announcements and replies. */
export const HEADER_RECONNECTS = 'Camstream-Reconnects';
/** Lower-case hex HMAC-SHA256 (signing.ts), when the sender has a secret. */
export const HEADER_SIGNATURE = 'Camstream-Signature';
/** On a describe request: 32 random bytes in base64 that the reply's signature must cover. */
export const HEADER_NONCE = 'Camstream-Nonce';

/** 32 bytes in standard base64, as protocol's newNonce makes them. */
export const NONCE_PATTERN = /^[A-Za-z0-9+/]{43}=$/;

/** Frame message bytes in one buffer (NATS publishes one payload): the head for `dropped`, then the payload. */
export function frameMessageBytes(frame: PreparedFrame, dropped: number): Buffer {
  const head = frame.headFor(dropped);
  const bytes = Buffer.allocUnsafe(head.length + frame.payload.length);
  head.copy(bytes, 0);
  frame.payload.copy(bytes, head.length);
  return bytes;
}

/** A hello's message bytes (validated against the schema, so a bad stream description throws here). */
export function helloMessageBytes(hello: HelloHeader): Buffer {
  return encodeMessage(hello).head;
}

/**
 * Decodes a NATS message body that must hold exactly one camstream message, no byte more or
 * less. Throws ProtocolError (from the decoder, or LengthMismatchError for a body that is not
 * exactly one message).
 */
export function decodeWholeMessage(body: Uint8Array, options: DecoderOptions): Message {
  const decoder = new MessageDecoder(options);
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const messages = decoder.push(bytes);
  const message = messages[0];
  if (message === undefined) {
    throw new LengthMismatchError(`the NATS message ends inside its camstream message (${bytes.length} bytes, not a whole message)`);
  }
  if (messages.length > 1 || decoder.midMessage) {
    throw new LengthMismatchError(`the NATS message holds more than one camstream message (${bytes.length} bytes)`);
  }
  return message;
}
