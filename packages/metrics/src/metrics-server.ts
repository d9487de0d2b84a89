import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PROMETHEUS_CONTENT_TYPE } from './prometheus-text';

export interface MetricsServerOptions {
  host: string;
  /** 0 picks a free port (read it back from `port`). */
  port: number;
  /** The exposition text, made fresh for each scrape. */
  render: () => string;
  log?: (line: string) => void;
}

/** A small HTTP server that answers GET /metrics in the Prometheus text format, and nothing else. */
export class MetricsServer {
  private constructor(
    private readonly server: Server,
    private readonly options: MetricsServerOptions,
  ) {}

  /** Starts listening; rejects with a message naming host:port when it cannot. */
  static listen(options: MetricsServerOptions): Promise<MetricsServer> {
    const server = createServer((req, res) => {
      req.on('error', () => undefined);
      res.on('error', () => undefined);
      const path = new URL(req.url ?? '/', 'http://metrics').pathname;
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { 'Content-Type': 'text/plain; charset=utf-8', Allow: 'GET, HEAD' });
        return void res.end(`method ${req.method ?? '?'} not allowed\n`);
      }
      if (path !== '/metrics') {
        res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
        return void res.end(`not found: ${path} (metrics are at /metrics)\n`);
      }
      let body: string;
      try {
        body = options.render();
      } catch (error) {
        options.log?.(`metrics: could not render /metrics: ${(error as Error).message}`);
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
        return void res.end('could not render the metrics\n');
      }
      res.writeHead(200, { 'Content-Type': PROMETHEUS_CONTENT_TYPE, 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
    server.on('clientError', (_error, socket) => socket.destroy());
    return new Promise((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        const where = `${options.host}:${options.port}`;
        const why = error.code === 'EADDRINUSE' ? 'the port is already in use' : error.code === 'EACCES' ? 'permission denied (ports below 1024 need privileges)' : error.message;
        reject(new Error(`cannot serve metrics on ${where}: ${why}`, { cause: error }));
      });
      server.listen(options.port, options.host, () => {
        server.removeAllListeners('error');
        server.on('error', (error) => options.log?.(`metrics server error: ${error.message}`));
        resolve(new MetricsServer(server, options));
      });
    });
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** http://host:port/metrics */
  get url(): string {
    const host = this.options.host.includes(':') ? `[${this.options.host}]` : this.options.host;
    return `http://${host}:${this.port}/metrics`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
