import type * as net from 'node:net';

/** The sender could not listen: the message says why in a user's words (port in use, no such address). */
export class ListenError extends Error {}

export interface ListenAddress {
  host: string;
  port: number;
  log?: (line: string) => void;
}

/**
 * Starts `server` listening (either server of the sender: camstream's or the tutorial's wire).
 * A failure to listen rejects with a ListenError; later server errors are logged, not thrown.
 */
export function listenOn(server: net.Server, options: ListenAddress): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new ListenError(describeListenError(err, options), { cause: err })));
    server.listen({ host: options.host, port: options.port, backlog: 64 }, () => {
      server.removeAllListeners('error');
      server.on('error', (err) => options.log?.(`server error: ${err.message}`));
      resolve();
    });
  });
}

/** HOST:PORT of a listening server, with brackets around an IPv6 address. */
export function addressOf(server: net.Server): string {
  const a = server.address() as net.AddressInfo;
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

export function portOf(server: net.Server): number {
  return (server.address() as net.AddressInfo).port;
}

export function describeListenError(err: NodeJS.ErrnoException, { host, port }: Pick<ListenAddress, 'host' | 'port'>): string {
  switch (err.code) {
    case 'EADDRINUSE':
      return `port ${port} on ${host} is already in use (is another sender running?)`;
    case 'EACCES':
      return `not allowed to listen on ${host}:${port} (ports below 1024 need privileges)`;
    case 'EADDRNOTAVAIL':
      return `${host} is not an address of this machine`;
    case 'ENOTFOUND':
      return `cannot resolve host ${host}`;
    default:
      return `cannot listen on ${host}:${port}: ${err.message}`;
  }
}
