import { readFileSync } from 'node:fs';
import {
  type Authenticator,
  connect,
  credsAuthenticator,
  errors,
  type NatsConnection,
  type NodeConnectionOptions,
} from '@nats-io/transport-node';
import { NatsTransportError } from './errors';

/*
 * One connection to a NATS server or cluster, with what a camstream publisher or subscriber needs
 * to know about it: whether it is up right now, how often it came back, the server's max_payload.
 * NATS's own security is passed through: user/password or token in the URL or the environment,
 * a creds file, tls:// with a CA file. Failures become NatsTransportErrors with a clear message.
 */

export interface NatsConnectOptions {
  /**
   * nats://[user:password@]host[:port], nats://token@host[:port], or tls://... to require TLS;
   * several servers of one cluster separated by commas. The port defaults to 4222.
   */
  url: string;
  /** Where NATS_USER, NATS_PASSWORD, NATS_TOKEN, NATS_CREDS and NATS_CA are read (default process.env); the URL's credentials come first. */
  env?: Record<string, string | undefined>;
  /** A creds file (JWT and nkey seed, as `nsc` writes it); default $NATS_CREDS. */
  credsFile?: string;
  /** PEM file with the CA that signed the server's certificate; default $NATS_CA. Implies TLS. */
  caFile?: string;
  /** Client name, shown by the server's monitoring (/connz). */
  name?: string;
  /** Keep trying when no server answers the first connect, instead of failing at once (default false). */
  waitForServer?: boolean;
  /** How long a server may take to answer a connect (default 5000 ms). */
  connectTimeoutMs?: number;
  /** Reconnect backoff: the first retry after this, doubling per failed attempt up to maxMs (defaults 250 and 4000 ms; jitter added). */
  reconnectBackoff?: { initialMs: number; maxMs: number };
  /** Client pings every intervalMs; a server that misses 3 in a row is dropped and reconnected (default 5000 ms). */
  pingIntervalMs?: number;
}

export interface ParsedNatsUrl {
  /** host:port of each server. */
  servers: string[];
  /** tls:// was asked for. */
  tls: boolean;
  user?: string;
  password?: string;
  token?: string;
}

const DEFAULT_PORT = 4222;

function urlError(text: string, why: string): NatsTransportError {
  return new NatsTransportError('ERR_NATS_URL', `NATS URL ${JSON.stringify(redact(text))} is not valid: ${why}; expected nats://[user:password@]host[:port] or tls://..., several separated by commas`);
}

/** The URL with any password or token replaced by "***", for messages and logs. */
export function redact(text: string): string {
  return text.replace(/(\/\/)([^@/,]*)@/g, (_match, slashes: string, userinfo: string) => {
    const colon = userinfo.indexOf(':');
    return `${slashes}${colon === -1 ? '***' : `${userinfo.slice(0, colon)}:***`}@`;
  });
}

/** Splits a NATS URL (list) into servers, TLS and credentials; throws NatsTransportError ERR_NATS_URL. */
export function parseNatsUrl(text: string): ParsedNatsUrl {
  const entries = text.split(',').map((entry) => entry.trim());
  if (entries.some((entry) => entry === '')) throw urlError(text, 'it has an empty server');
  const parsed: ParsedNatsUrl = { servers: [], tls: false };
  const schemes = new Set<string>();
  let credentials: string | undefined;
  for (const entry of entries) {
    let url: URL;
    try {
      url = new URL(/^[a-z]+:\/\//i.test(entry) ? entry : `nats://${entry}`);
    } catch {
      throw urlError(text, `${JSON.stringify(redact(entry))} is not a URL`);
    }
    const scheme = url.protocol.slice(0, -1).toLowerCase();
    if (scheme !== 'nats' && scheme !== 'tls') throw urlError(text, `scheme ${scheme}:// is not nats:// or tls://`);
    schemes.add(scheme);
    if (!url.hostname) throw urlError(text, 'it names no host');
    if (url.pathname !== '' && url.pathname !== '/') throw urlError(text, `it has a path (${url.pathname})`);
    if (url.search || url.hash) throw urlError(text, 'it has a query or fragment');
    parsed.servers.push(`${url.hostname}:${url.port || DEFAULT_PORT}`);
    if (url.username || url.password) {
      const these = `${url.username}:${url.password}`;
      if (credentials !== undefined && credentials !== these) throw urlError(text, 'its servers carry different credentials');
      credentials = these;
      const user = decodeURIComponent(url.username);
      if (url.password) {
        parsed.user = user;
        parsed.password = decodeURIComponent(url.password);
      } else {
        // NATS convention: a user name alone is a token.
        parsed.token = user;
      }
    }
  }
  if (schemes.size > 1) throw urlError(text, 'it mixes nats:// and tls:// servers');
  parsed.tls = schemes.has('tls');
  return parsed;
}

export type LinkEvent =
  | { type: 'disconnected'; server: string }
  | { type: 'reconnected'; server: string }
  | { type: 'closed'; error: NatsTransportError | undefined };

/** A connection to NATS; see connectNats. */
export class NatsLink {
  private isConnected = true;
  private reconnectCount = 0;
  private lastMaxPayload: number;
  private readonly listeners = new Set<(event: LinkEvent) => void>();
  /** Resolves when the connection is closed for good: undefined if this side closed it, else why. */
  readonly closed: Promise<NatsTransportError | undefined>;
  private closedWith: NatsTransportError | undefined;
  private isClosed = false;

  constructor(
    /** The nats.js connection itself, for what this class does not wrap. */
    readonly connection: NatsConnection,
    /** The servers as the URL named them (no credentials), for messages. */
    readonly description: string,
    private readonly credentialsSource: string,
    private readonly failedAttempts: { count: number },
  ) {
    this.lastMaxPayload = connection.info?.max_payload ?? 0;
    // The status stream ends when the connection closes; nothing it could throw matters then.
    this.watchStatus().catch(() => undefined);
    this.closed = connection.closed().then((error) => {
      this.isConnected = false;
      this.isClosed = true;
      this.closedWith = error ? describeFailure(error, this.description, this.credentialsSource) : undefined;
      this.emit({ type: 'closed', error: this.closedWith });
      return this.closedWith;
    });
  }

  /** True while a server connection is up (false between a disconnect and the reconnect, and once closed). */
  get connected(): boolean {
    return this.isConnected && !this.isClosed;
  }

  /** True once closed for good. */
  get done(): boolean {
    return this.isClosed;
  }

  /** Why the connection closed, if it closed by failure. */
  get failure(): NatsTransportError | undefined {
    return this.closedWith;
  }

  /** How many times the connection came back after a disconnect. */
  get reconnects(): number {
    return this.reconnectCount;
  }

  /** The server connected to now, host:port. */
  get server(): string {
    return this.connection.getServer();
  }

  /** The largest message the current server accepts (its max_payload), in bytes: headers and body together. */
  get maxPayload(): number {
    const current = this.connection.info?.max_payload;
    if (current) this.lastMaxPayload = current;
    return this.lastMaxPayload;
  }

  /** Calls `listener` on disconnects, reconnects and the final close; returns a function that removes it. */
  onEvent(listener: (event: LinkEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Closes the connection (what was published is flushed first); resolves when it is closed. */
  async close(): Promise<void> {
    if (!this.connection.isClosed()) await this.connection.close();
    await this.closed;
  }

  private emit(event: LinkEvent): void {
    for (const listener of [...this.listeners]) listener(event);
  }

  private async watchStatus(): Promise<void> {
    for await (const status of this.connection.status()) {
      switch (status.type) {
        case 'disconnect':
          this.isConnected = false;
          this.emit({ type: 'disconnected', server: status.server });
          break;
        case 'reconnecting':
          this.failedAttempts.count++;
          break;
        case 'reconnect':
          this.isConnected = true;
          this.reconnectCount++;
          this.failedAttempts.count = 0;
          this.emit({ type: 'reconnected', server: status.server });
          break;
        default:
          break;
      }
    }
  }
}

function readFile(file: string, what: string): Uint8Array {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new NatsTransportError('ERR_NATS_FILE', `cannot read the NATS ${what} ${file}: ${(error as Error).message}`, { cause: error });
  }
}

interface ResolvedSecurity {
  options: Pick<NodeConnectionOptions, 'user' | 'pass' | 'token' | 'authenticator' | 'tls'>;
  /** Where the credentials came from, for messages: `user "alice" from the URL`. */
  source: string;
}

function resolveSecurity(parsed: ParsedNatsUrl, options: NatsConnectOptions): ResolvedSecurity {
  const env = options.env ?? process.env;
  const security: ResolvedSecurity = { options: {}, source: 'no credentials' };
  const credsFile = options.credsFile ?? env['NATS_CREDS'];
  if (parsed.user !== undefined) {
    security.options = { user: parsed.user, pass: parsed.password };
    security.source = `user ${JSON.stringify(parsed.user)} from the URL`;
  } else if (parsed.token !== undefined) {
    security.options = { token: parsed.token };
    security.source = 'the token from the URL';
  } else if (credsFile) {
    const creds = readFile(credsFile, 'creds file');
    const authenticator: Authenticator = credsAuthenticator(creds);
    try {
      // nats.js reads the file only when a server asks for a signature; sign a dummy nonce now, so a bad file is named here.
      authenticator('camstream-creds-check');
    } catch (error) {
      throw new NatsTransportError('ERR_NATS_FILE', `the NATS creds file ${credsFile} is not a creds file: ${(error as Error).message}`, { cause: error });
    }
    security.options = { authenticator };
    security.source = `the creds file ${credsFile}`;
  } else if (env['NATS_USER'] !== undefined) {
    security.options = { user: env['NATS_USER'], pass: env['NATS_PASSWORD'] ?? '' };
    security.source = `user ${JSON.stringify(env['NATS_USER'])} from NATS_USER`;
  } else if (env['NATS_TOKEN'] !== undefined) {
    security.options = { token: env['NATS_TOKEN'] };
    security.source = 'the token from NATS_TOKEN';
  }
  const caFile = options.caFile ?? env['NATS_CA'];
  if (caFile) {
    // Read now, so that a missing file is reported as such rather than as a TLS failure.
    readFile(caFile, 'CA file');
    security.options.tls = { caFile };
  } else if (parsed.tls) {
    security.options.tls = {};
  }
  return security;
}

/** A nats.js failure as a NatsTransportError that names the server and says what to do. */
export function describeFailure(error: Error, where: string, credentialsSource: string): NatsTransportError {
  if (error instanceof NatsTransportError) return error;
  const cause = (error as { cause?: unknown }).cause;
  const detail = [error.message, cause instanceof Error ? cause.message : ''].join(' ');
  if (error instanceof errors.AuthorizationError || error instanceof errors.UserAuthenticationExpiredError) {
    return new NatsTransportError(
      'ERR_NATS_AUTH',
      `NATS at ${where} refused the credentials: ${error.message.toLowerCase()} (${credentialsSource})`,
      { cause: error },
    );
  }
  if (/certificate|ssl|tls|handshake/i.test(detail) || (error instanceof errors.InvalidArgumentError && /tls/i.test(error.message))) {
    const hint = /available on this server|does not support 'tls'/i.test(detail)
      ? 'the server does not offer TLS: use nats:// (or enable TLS on the server)'
      : 'check tls:// and the CA file (NATS_CA)';
    return new NatsTransportError('ERR_NATS_TLS', `TLS with NATS at ${where} failed: ${detail.trim()}; ${hint}`, { cause: error });
  }
  if (error instanceof errors.TimeoutError) {
    return new NatsTransportError('ERR_NATS_UNREACHABLE', `NATS at ${where} did not answer in time`, { cause: error });
  }
  if (error instanceof errors.ConnectionError || /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ETIMEDOUT/.test(detail)) {
    const why = /ENOTFOUND|EAI_AGAIN/.test(detail) ? 'unknown host' : error.message;
    return new NatsTransportError('ERR_NATS_UNREACHABLE', `NATS at ${where} is not reachable: ${why}`, { cause: error });
  }
  return new NatsTransportError('ERR_NATS_UNREACHABLE', `NATS at ${where} failed: ${error.message}`, { cause: error });
}

/**
 * Connects to NATS. Reconnects forever afterwards, with backoff, across the servers of the URL
 * and those the cluster announces. Throws NatsTransportError: ERR_NATS_URL, ERR_NATS_FILE,
 * ERR_NATS_AUTH (e.g. `NATS at 127.0.0.1:4222 refused the credentials: authorization violation
 * (user "alice" from the URL)`), ERR_NATS_TLS or ERR_NATS_UNREACHABLE.
 */
export async function connectNats(options: NatsConnectOptions): Promise<NatsLink> {
  const parsed = parseNatsUrl(options.url);
  const security = resolveSecurity(parsed, options);
  const where = parsed.servers.join(', ');
  const backoff = options.reconnectBackoff ?? { initialMs: 250, maxMs: 4000 };
  const failedAttempts = { count: 0 };
  const natsOptions: NodeConnectionOptions = {
    servers: parsed.servers,
    ...security.options,
    name: options.name,
    timeout: options.connectTimeoutMs ?? 5000,
    reconnect: true,
    maxReconnectAttempts: -1,
    waitOnFirstConnect: options.waitForServer ?? false,
    // Exponential backoff with jitter; nats.js asks before each pass over the servers.
    reconnectDelayHandler: () => Math.min(backoff.initialMs * 2 ** failedAttempts.count, backoff.maxMs) + Math.random() * backoff.initialMs,
    pingInterval: options.pingIntervalMs ?? 5000,
    maxPingOut: 3,
  };
  let connection: NatsConnection;
  try {
    connection = await connect(natsOptions);
  } catch (error) {
    throw describeFailure(error as Error, where, security.source);
  }
  return new NatsLink(connection, where, security.source, failedAttempts);
}
