import { readFileSync } from 'node:fs';
import { connect, type NetConnectOpts } from 'node:net';
import { homedir, hostname } from 'node:os';
import { join } from 'node:path';

/*
 * Just enough of the X11 protocol to ask "would a client connect to this display?": open the
 * socket that DISPLAY names and send the connection setup (with the MIT-MAGIC-COOKIE-1 from
 * Xauthority, as libxcb would). The server's first reply byte says success (1), failure (0,
 * e.g. a missing cookie) or "authenticate further" (2). Qt aborts the process when this fails,
 * so we ask before OpenCV ever touches the display.
 */

export interface DisplayAddress {
  /** DISPLAY as given. */
  readonly display: string;
  readonly displayNumber: number;
  /** Sockets to try, in order: unix socket file, abstract socket, or TCP host:6000+N. */
  readonly targets: readonly NetConnectOpts[];
  /** Human-readable description of where the server should be, for error messages. */
  readonly where: string;
  readonly local: boolean;
  /** Host name or address for TCP displays. */
  readonly tcpHost?: string;
}

/** Parses `[protocol/][host]:display[.screen]`; undefined when DISPLAY is not of that form. */
export function parseDisplay(display: string): DisplayAddress | undefined {
  const match = /^(.*):(\d+)(?:\.\d+)?$/.exec(display.trim());
  if (!match) return undefined;
  let host = match[1]!;
  const displayNumber = Number(match[2]);
  if (host.startsWith('/')) {
    // macOS launchd style: the part before the display number is a socket path.
    return { display, displayNumber, targets: [{ path: `${host}:${displayNumber}` }], where: `${host}:${displayNumber}`, local: true };
  }
  const slash = host.indexOf('/');
  const protocol = slash >= 0 ? host.slice(0, slash) : '';
  if (slash >= 0) host = host.slice(slash + 1);
  if (host === '' || host === 'unix' || protocol === 'unix') {
    const path = `/tmp/.X11-unix/X${displayNumber}`;
    const targets: NetConnectOpts[] = [{ path }];
    if (process.platform === 'linux') targets.push({ path: `\0${path}` }); // Linux X servers also listen on an abstract socket
    return { display, displayNumber, targets, where: path, local: true };
  }
  host = host.replace(/^\[(.*)\]$/, '$1');
  const port = 6000 + displayNumber;
  return { display, displayNumber, targets: [{ host, port }], where: `${host}:${port} (TCP)`, local: false, tcpHost: host };
}

interface Cookie {
  readonly name: string;
  readonly data: Buffer;
}

const FAMILY_INTERNET = 0;
const FAMILY_LOCAL = 256;
const FAMILY_WILD = 65535;
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '::1']);

/** The Xauthority cookie a client would present for this display, if the file has one. */
export function findCookie(address: DisplayAddress, env: NodeJS.ProcessEnv): Cookie | undefined {
  const file = env['XAUTHORITY'] || join(env['HOME'] || homedir(), '.Xauthority');
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch {
    return undefined;
  }
  const number = String(address.displayNumber);
  const { tcpHost } = address;
  const viaLocalEntries = address.local || (tcpHost !== undefined && LOOPBACK_HOSTS.has(tcpHost));
  const me = hostname();
  let fallback: Cookie | undefined;
  for (const entry of readXauthority(bytes)) {
    if ((entry.number !== number && entry.number !== '') || entry.name !== 'MIT-MAGIC-COOKIE-1') continue;
    const cookie = { name: entry.name, data: entry.data };
    if (entry.family === FAMILY_WILD) return cookie;
    if (viaLocalEntries && entry.family === FAMILY_LOCAL) {
      if (entry.address.toString('latin1') === me) return cookie;
      fallback ??= cookie;
    }
    if (!viaLocalEntries && entry.family === FAMILY_INTERNET && tcpHost !== undefined && entry.address.join('.') === tcpHost) return cookie;
  }
  return fallback;
}

interface XauthorityEntry {
  family: number;
  address: Buffer;
  number: string;
  name: string;
  data: Buffer;
}

/** Xauthority records: family (u16 BE), then address, display number, auth name, auth data, each a u16 BE length and bytes. */
function* readXauthority(bytes: Buffer): Generator<XauthorityEntry> {
  let offset = 0;
  const field = (): Buffer | undefined => {
    if (offset + 2 > bytes.length) return undefined;
    const length = bytes.readUInt16BE(offset);
    if (offset + 2 + length > bytes.length) return undefined;
    const value = bytes.subarray(offset + 2, offset + 2 + length);
    offset += 2 + length;
    return value;
  };
  while (offset + 2 <= bytes.length) {
    const family = bytes.readUInt16BE(offset);
    offset += 2;
    const address = field();
    const number = field();
    const name = field();
    const data = field();
    if (!address || !number || !name || !data) return;
    yield { family, address, number: number.toString('latin1'), name: name.toString('latin1'), data };
  }
}

/** The X11 connection setup request, little-endian, protocol 11.0, with an optional cookie. */
export function connectionSetup(cookie: Cookie | undefined): Buffer {
  const name = Buffer.from(cookie?.name ?? '', 'latin1');
  const data = cookie?.data ?? Buffer.alloc(0);
  const padded = (length: number) => (length + 3) & ~3;
  const request = Buffer.alloc(12 + padded(name.length) + padded(data.length));
  request[0] = 0x6c; // 'l': little-endian
  request.writeUInt16LE(11, 2);
  request.writeUInt16LE(0, 4);
  request.writeUInt16LE(name.length, 6);
  request.writeUInt16LE(data.length, 8);
  name.copy(request, 12);
  data.copy(request, 12 + padded(name.length));
  return request;
}

export type DisplayStatus =
  | { readonly available: true; readonly display: string }
  | { readonly available: false; readonly reason: string };

/** Connects and sends the setup request; resolves with the server's verdict, never rejects. */
export async function probeX11(address: DisplayAddress, setup: Buffer, timeoutMs: number): Promise<DisplayStatus> {
  const deadline = Date.now() + timeoutMs;
  let lastError = 'nothing listens there';
  for (const target of address.targets) {
    const outcome = await handshake(target, setup, Math.max(1, deadline - Date.now()));
    if (outcome.kind === 'answer') {
      if (outcome.status === 1) return { available: true, display: address.display };
      return { available: false, reason: `the X server at ${address.display} refused the connection${outcome.detail ? `: ${outcome.detail}` : ''}` };
    }
    lastError = outcome.detail;
  }
  return { available: false, reason: `DISPLAY=${address.display} but no X server answers at ${address.where} (${lastError})` };
}

type HandshakeOutcome = { kind: 'answer'; status: number; detail: string } | { kind: 'no-answer'; detail: string };

function handshake(target: NetConnectOpts, setup: Buffer, timeoutMs: number): Promise<HandshakeOutcome> {
  return new Promise((resolve) => {
    const socket = connect(target);
    let reply = Buffer.alloc(0);
    let done = false;
    const finish = (outcome: HandshakeOutcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish({ kind: 'no-answer', detail: `no answer within ${timeoutMs} ms` }), timeoutMs);
    socket.on('connect', () => socket.write(setup));
    socket.on('error', (err: NodeJS.ErrnoException) => finish({ kind: 'no-answer', detail: err.code ?? err.message }));
    socket.on('close', () => finish({ kind: 'no-answer', detail: 'the connection closed without an answer' }));
    socket.on('data', (chunk: Buffer) => {
      reply = Buffer.concat([reply, chunk]);
      if (reply.length < 8) return;
      const status = reply[0]!;
      // A failure carries its reason: length in byte 1, text from byte 8.
      const reasonLength = status === 0 ? reply[1]! : 0;
      if (reply.length < 8 + reasonLength) return;
      finish({ kind: 'answer', status, detail: reply.subarray(8, 8 + reasonLength).toString('latin1').trim() });
    });
  });
}

/**
 * The same probe as a standalone script, for the synchronous check (hasDisplay) that runs it
 * with spawnSync: argv[1] is JSON [targets, setup hex, timeout ms]. Exit code: 0 = accepted,
 * 1 = refused, 2 = no server answered.
 */
export const PROBE_SCRIPT = `
const net = require('net');
const [targets, setupHex, timeoutMs] = JSON.parse(process.argv[1]);
setTimeout(() => process.exit(2), timeoutMs);
let index = 0;
(function next() {
  if (index >= targets.length) process.exit(2);
  const socket = net.connect(targets[index++]);
  let reply = Buffer.alloc(0);
  socket.on('connect', () => socket.write(Buffer.from(setupHex, 'hex')));
  socket.on('error', () => { socket.destroy(); next(); });
  socket.on('data', (chunk) => {
    reply = Buffer.concat([reply, chunk]);
    if (reply.length >= 1) process.exit(reply[0] === 1 ? 0 : 1);
  });
  socket.on('end', () => { socket.destroy(); next(); });
})();
`;
