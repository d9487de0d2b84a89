import { execFileSync } from 'node:child_process';
import { accessSync, constants as fsConstants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from './loopback';
import { type AppProcess, startProcess } from './processes';

/*
 * Real nats-server processes for tests and benchmarks (Debian's nats-server, installed by
 * scripts/test.sh): one server or a cluster with routes, on free ports, from a generated config.
 * Each is started through startProcess, so the testkit's cleanup stops whatever a test leaves.
 */

export interface NatsServerOptions {
  /** Largest message a client may publish, in bytes. Default 8 MiB (nats-server's own default is 1 MiB). */
  maxPayload?: number;
  /** Require this user and password (both, or neither). */
  user?: string;
  password?: string;
  /** Require this token (exclusive with user/password). */
  token?: string;
  /** Serve TLS only, with a self-signed certificate for 127.0.0.1 and localhost generated for this server (`caFile`). */
  tls?: boolean;
  /** Server name in its logs and monitoring (default nats-<port>). */
  name?: string;
}

export interface NatsVarz {
  server_name: string;
  connections: number;
  in_msgs: number;
  out_msgs: number;
  in_bytes: number;
  out_bytes: number;
  slow_consumers: number;
  mem: number;
  cpu: number;
  max_payload: number;
  [key: string]: unknown;
}

export interface NatsConnz {
  num_connections: number;
  connections: NatsConnectionInfo[];
}

export interface NatsConnectionInfo {
  cid: number;
  name?: string;
  in_msgs: number;
  out_msgs: number;
  in_bytes: number;
  out_bytes: number;
  pending_bytes: number;
  subscriptions: number;
  [key: string]: unknown;
}

interface ClusterSettings {
  name: string;
  port: number;
  /** Route ports of the other nodes. */
  peers: number[];
}

/** Where the nats-server binary is: $NATS_SERVER, else Debian's /usr/sbin/nats-server, else PATH. */
export function natsServerBinary(): string {
  const candidates = [process.env['NATS_SERVER'], '/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'];
  for (const candidate of candidates) {
    if (!candidate) continue;
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, 'nats-server');
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  throw new Error('nats-server not found (looked at $NATS_SERVER, /usr/sbin, /usr/bin, /usr/local/bin and PATH): apt-get install nats-server, as scripts/test.sh does');
}

/** A self-signed certificate for 127.0.0.1 and localhost; the certificate file is its own CA file. */
function generateCertificate(dir: string): { certFile: string; keyFile: string } {
  const certFile = path.join(dir, 'server-cert.pem');
  const keyFile = path.join(dir, 'server-key.pem');
  // Node has no API to make a certificate; openssl (Debian's openssl package) does it in milliseconds.
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=camstream test nats',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', keyFile, '-out', certFile],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return { certFile, keyFile };
}

/** The nats-server configuration text (its own format; strings quoted as JSON, which it accepts). */
function configText(server: { name: string; port: number; monitorPort: number; maxPayload: number }, options: NatsServerOptions, tls: { certFile: string; keyFile: string } | undefined, cluster: ClusterSettings | undefined): string {
  const q = (text: string) => JSON.stringify(text);
  const lines = [
    `server_name: ${q(server.name)}`,
    `listen: "127.0.0.1:${server.port}"`,
    `http: "127.0.0.1:${server.monitorPort}"`,
    `max_payload: ${server.maxPayload}`,
    // Past the largest payload, so that max_payload is the limit a test meets.
    `max_pending: ${Math.max(64 * 1024 * 1024, 4 * server.maxPayload)}`,
  ];
  if (options.user !== undefined) lines.push(`authorization { user: ${q(options.user)}, password: ${q(options.password ?? '')} }`);
  if (options.token !== undefined) lines.push(`authorization { token: ${q(options.token)} }`);
  if (tls) lines.push(`tls { cert_file: ${q(tls.certFile)}, key_file: ${q(tls.keyFile)}, timeout: 5 }`);
  if (cluster) {
    const routes = cluster.peers.map((port) => q(`nats-route://127.0.0.1:${port}`)).join(', ');
    lines.push(`cluster { name: ${q(cluster.name)}, listen: "127.0.0.1:${cluster.port}", routes: [${routes}] }`);
  }
  return `${lines.join('\n')}\n`;
}

function getJson<T>(port: number, pathname: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path: pathname, timeout: 5000 }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as T);
        } catch (error) {
          reject(new Error(`nats-server monitoring ${pathname} on port ${port} did not answer JSON`, { cause: error }));
        }
      });
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`nats-server monitoring ${pathname} on port ${port} timed out`)));
    request.on('error', reject);
  });
}

/** One running (or restartable) nats-server. */
export class NatsServer implements AsyncDisposable {
  /** Client port on 127.0.0.1. */
  readonly port: number;
  /** HTTP monitoring port on 127.0.0.1 (/varz, /connz, /routez). */
  readonly monitorPort: number;
  readonly name: string;
  readonly maxPayload: number;
  /** The CA file a client needs with `tls` (the self-signed certificate itself). */
  readonly caFile: string | undefined;
  private readonly dir: string;
  private readonly configFile: string;
  private child: AppProcess;
  private stopped = false;

  private constructor(settings: { port: number; monitorPort: number; name: string; maxPayload: number; caFile: string | undefined; dir: string; configFile: string }) {
    this.port = settings.port;
    this.monitorPort = settings.monitorPort;
    this.name = settings.name;
    this.maxPayload = settings.maxPayload;
    this.caFile = settings.caFile;
    this.dir = settings.dir;
    this.configFile = settings.configFile;
    this.child = NatsServer.spawn(this.configFile, this.name);
  }

  /** Writes the config and starts the server; `ready()` waits for it. (Use startNatsServer / startNatsCluster.) */
  static async create(options: NatsServerOptions, cluster?: (port: number) => ClusterSettings | undefined): Promise<NatsServer> {
    if (options.user !== undefined && options.token !== undefined) throw new Error('a NATS test server takes a user and password or a token, not both');
    if ((options.user === undefined) !== (options.password === undefined)) throw new Error('a NATS test server needs both user and password, or neither');
    const port = await freePort();
    const monitorPort = await freePort();
    const name = options.name ?? `nats-${port}`;
    const maxPayload = options.maxPayload ?? 8 * 1024 * 1024;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'camstream-nats-'));
    const tls = options.tls ? generateCertificate(dir) : undefined;
    const configFile = path.join(dir, 'nats-server.conf');
    writeFileSync(configFile, configText({ name, port, monitorPort, maxPayload }, options, tls, cluster?.(port)));
    return new NatsServer({ port, monitorPort, name, maxPayload, caFile: tls?.certFile, dir, configFile });
  }

  private static spawn(configFile: string, name: string): AppProcess {
    return startProcess(natsServerBinary(), ['-c', configFile], { name });
  }

  /** host:port, as NATS URLs and nats.js name a server. */
  get hostPort(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** nats://127.0.0.1:port (tls://... for a TLS server), without credentials. */
  get url(): string {
    return `${this.caFile ? 'tls' : 'nats'}://${this.hostPort}`;
  }

  /** The server process (its output, its pid). Changes on restart(). */
  get process(): AppProcess {
    return this.child;
  }

  /** Resolves once the server accepts clients; rejects (quoting its output) if it exits or takes over 20 s. */
  async ready(): Promise<void> {
    await this.child.waitForLine(/Server is ready/, { timeoutMs: 20_000 });
  }

  varz(): Promise<NatsVarz> {
    return getJson<NatsVarz>(this.monitorPort, '/varz');
  }

  connz(): Promise<NatsConnz> {
    return getJson<NatsConnz>(this.monitorPort, '/connz?subs=0');
  }

  routez(): Promise<{ num_routes: number }> {
    return getJson<{ num_routes: number }>(this.monitorPort, '/routez');
  }

  /** Stops the server (SIGTERM: it closes its clients' connections) and waits until it has exited. */
  async stop(): Promise<void> {
    await this.child.kill();
  }

  /** Stops the server and starts it again with the same config on the same ports; resolves when it is ready. */
  async restart(): Promise<void> {
    if (this.stopped) throw new Error(`${this.name} was disposed; it cannot be restarted`);
    await this.stop();
    this.child = NatsServer.spawn(this.configFile, this.name);
    await this.ready();
  }

  /** Stops the server for good and removes its config (and certificate). */
  async dispose(): Promise<void> {
    this.stopped = true;
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}

/** Starts one nats-server on free ports; resolves once it accepts clients. */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const server = await NatsServer.create(options);
  try {
    await server.ready();
  } catch (error) {
    await server.dispose();
    throw error;
  }
  return server;
}

/** Nodes of a cluster, each routed to every other. */
export class NatsCluster implements AsyncDisposable {
  constructor(readonly servers: readonly NatsServer[]) {}

  /** Node `index` (0-based). */
  node(index: number): NatsServer {
    const server = this.servers[index];
    if (!server) throw new RangeError(`the cluster has ${this.servers.length} nodes, no node ${index}`);
    return server;
  }

  /**
   * Resolves once every node has a route to every other node (polling /routez: a route forms in
   * the background after the servers are ready); rejects after timeoutMs.
   */
  async routesUp(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const wanted = this.servers.length - 1;
    for (;;) {
      const routes = await Promise.all(this.servers.map((server) => server.routez().then((r) => r.num_routes, () => -1)));
      if (routes.every((count) => count >= wanted)) return;
      if (Date.now() > deadline) throw new Error(`NATS cluster routes not up within ${timeoutMs} ms: routes per node ${routes.join(', ')}, want ${wanted}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async dispose(): Promise<void> {
    await Promise.all(this.servers.map((server) => server.dispose()));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}

/**
 * Starts a cluster of `size` nodes (default 2) on free ports, each with routes to all others;
 * resolves once every node is ready and every route is up.
 */
export async function startNatsCluster(size = 2, options: NatsServerOptions = {}): Promise<NatsCluster> {
  if (!Number.isInteger(size) || size < 2) throw new RangeError(`a cluster needs at least 2 nodes, got ${size}`);
  const routePorts: number[] = [];
  for (let i = 0; i < size; i++) routePorts.push(await freePort());
  const clusterName = `camstream-${routePorts[0]}`;
  const servers: NatsServer[] = [];
  try {
    for (let i = 0; i < size; i++) {
      const routePort = routePorts[i]!;
      servers.push(
        await NatsServer.create({ ...options, name: `${options.name ?? 'node'}-${i}` }, () => ({
          name: clusterName,
          port: routePort,
          peers: routePorts.filter((port) => port !== routePort),
        })),
      );
    }
    const cluster = new NatsCluster(servers);
    await Promise.all(servers.map((server) => server.ready()));
    await cluster.routesUp();
    return cluster;
  } catch (error) {
    await Promise.all(servers.map((server) => server.dispose()));
    throw error;
  }
}
