import net from 'node:net';
import tls from 'node:tls';
import { SessionError } from '@camstream/protocol';

export interface TransportOptions {
  host: string;
  port: number;
  /** Connect over TLS, trusting this CA (PEM) or exactly the certificate with this SHA-256 fingerprint. */
  tls?: { ca?: Buffer; fingerprint256?: string };
}

/** Where the bytes of a connection go. */
export interface ByteSink {
  /**
   * Where the next read may land directly (the unfilled rest of a frame payload's destination),
   * or undefined for the transport's own read buffer. Plain TCP only.
   */
  directTarget(): Buffer | undefined;
  /** `bytes` bytes were read into the buffer directTarget() gave, at `at` (performance.now()). */
  wroteDirectly(bytes: number, at: number): void;
  /** Bytes read into the transport's buffer, at `at`; the memory is reused once this returns. */
  received(chunk: Buffer, at: number): void;
}

export interface Transport {
  readonly socket: net.Socket;
  /** The event after which the peer may be written to: 'connect', or 'secureConnect' for TLS. */
  readonly readyEvent: 'connect' | 'secureConnect';
}

/** How much one read takes when it does not go straight into a frame payload. */
const READ_BUFFER_BYTES = 64 * 1024;

/**
 * Opens the connection. Plain TCP reads through `onread` (net.connect's option), so every read
 * lands either in one reused buffer or straight in the destination of the frame payload being
 * read: no Buffer is allocated per read, and a large payload costs one copy (the kernel's). TLS
 * has no such option: its decrypted chunks arrive as 'data' events, each a fresh Buffer.
 */
export function openTransport(options: TransportOptions, bytes: ByteSink): Transport {
  const { host, port, tls: trust } = options;
  if (trust) {
    const socket = tls.connect({
      host,
      port,
      ...(net.isIP(host) ? {} : { servername: host }),
      minVersion: 'TLSv1.2',
      // A pinned fingerprint replaces CA validation; it is checked in checkPinnedCertificate.
      ...(trust.fingerprint256 ? { rejectUnauthorized: false } : { ca: trust.ca, rejectUnauthorized: true }),
    });
    socket.on('data', (chunk: Buffer) => bytes.received(chunk, performance.now()));
    return { socket, readyEvent: 'secureConnect' };
  }
  const readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  const socket = net.connect({
    host,
    port,
    onread: {
      // Called before the first read and after every one: where the next read lands.
      buffer: () => bytes.directTarget() ?? readBuffer,
      callback: (nread: number, buffer: Uint8Array) => {
        const at = performance.now();
        if (buffer === readBuffer) bytes.received(readBuffer.subarray(0, nread), at);
        else bytes.wroteDirectly(nread, at);
        return true; // go on reading
      },
    },
  });
  return { socket, readyEvent: 'connect' };
}

/** With a pinned fingerprint: the error if the sender presented another certificate. */
export function checkPinnedCertificate(socket: net.Socket, options: TransportOptions): SessionError | undefined {
  const pinned = options.tls?.fingerprint256;
  if (!pinned) return undefined;
  const presented = (socket as tls.TLSSocket).getPeerCertificate().fingerprint256;
  if (normaliseFingerprint(presented) === normaliseFingerprint(pinned)) return undefined;
  return new SessionError('ERR_AUTH', `the sender's certificate fingerprint ${presented} is not the pinned ${pinned}`);
}

function normaliseFingerprint(fingerprint: string): string {
  return fingerprint.replace(/:/g, '').toUpperCase();
}

/** A socket error as a sentence naming the peer; an untrusted certificate is final (ERR_AUTH). */
export function describeSocketError(error: NodeJS.ErrnoException, { host, port, tls: trust }: TransportOptions): Error {
  const where = `${host}:${port}`;
  if (trust && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/.test(error.code ?? '')) {
    return new SessionError('ERR_AUTH', `the sender's TLS certificate is not trusted: ${error.message}`, { cause: error });
  }
  if (trust && /SSL|TLS/.test(error.code ?? '')) {
    return new Error(`TLS handshake with ${where} failed (is the sender using TLS?): ${error.message}`, { cause: error });
  }
  switch (error.code) {
    case 'ECONNREFUSED':
      return new Error(`no sender at ${where} (connection refused)`, { cause: error });
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new Error(`cannot resolve host ${host}`, { cause: error });
    case 'ECONNRESET':
      return new Error(`the sender at ${where} reset the connection`, { cause: error });
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return new Error(`cannot reach ${where} (${error.code})`, { cause: error });
    default:
      return new Error(`connection to ${where} failed: ${error.message}`, { cause: error });
  }
}

/**
 * Bytes as a double-quoted string a person can read: printable ASCII as is, `\r` `\n` `\t` `\"`
 * `\\` escaped, anything else as `\xNN`; cut after the first line, with "..." when more followed.
 */
export function quotePrintably(bytes: Buffer, more: boolean): string {
  const newline = bytes.indexOf(0x0a);
  const shown = newline >= 0 && newline < bytes.length - 1 ? bytes.subarray(0, newline + 1) : bytes;
  let text = '';
  for (const byte of shown) {
    if (byte === 0x0d) text += '\\r';
    else if (byte === 0x0a) text += '\\n';
    else if (byte === 0x09) text += '\\t';
    else if (byte === 0x22 || byte === 0x5c) text += `\\${String.fromCharCode(byte)}`;
    else if (byte >= 0x20 && byte < 0x7f) text += String.fromCharCode(byte);
    else text += `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return `"${text}${shown.length < bytes.length || more ? '...' : ''}"`;
}
