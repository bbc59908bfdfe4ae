/**
 * The NBD server: a TCP listener, one handshake then one transmission per
 * connection. A client's mistakes cost that client its request or its
 * connection, never the process.
 */
import * as net from 'node:net';
import type { Pool } from '../engine';
import { attachSession } from './attach';
import type { NbdBackend, NbdExports } from './backend';
import { NbdConnection } from './connection';
import { EngineExports } from './engine-backend';
import { isNbdError } from './errors';
import { negotiate } from './handshake';
import { SessionRegistry } from './sessions';
import { type NbdTlsOptions, tlsPolicy } from './tls';
import { Transmission } from './transmission';

export interface NbdServerOptions {
  exports: NbdExports;
  /** Default 127.0.0.1 (loopback only). */
  host?: string;
  /** Default 10809; 0 picks a free port. */
  port?: number;
  tls?: NbdTlsOptions;
  /** A client that has not chosen an export within this time is dropped (default 30 s). */
  handshakeTimeoutMs?: number;
  /** Unexpected errors (engine I/O errors, socket errors). Default: one line on stderr. */
  onError?: (err: unknown, context: { remote: string }) => void;
  /** Where attached sessions are registered (shared with the agent); default: a registry of its own. */
  sessions?: SessionRegistry;
}

export interface NbdServer {
  readonly host: string;
  readonly port: number;
  /** nbd:// URL of an export on this server. */
  url(exportName: string): string;
  /** Open client connections. */
  connections(): number;
  /** Sessions in transmission, by what they are bound to. */
  readonly sessions: SessionRegistry;
  /** Stops listening and drops every connection. */
  close(): Promise<void>;
}

export async function createNbdServer(options: NbdServerOptions): Promise<NbdServer> {
  const tls = options.tls ? tlsPolicy(options.tls) : null;
  const timeout = options.handshakeTimeoutMs ?? 30_000;
  const report =
    options.onError ??
    ((err: unknown, context: { remote: string }) =>
      console.error(`nbd: ${context.remote}: ${err instanceof Error ? err.message : String(err)}`));
  const open = new Set<NbdConnection>();
  const sessions = options.sessions ?? new SessionRegistry();
  let shuttingDown = false;
  const config = { exports: options.exports, tls, shuttingDown: () => shuttingDown };

  // Without TLS no socket is ever re-wrapped, so reads can go straight into our own buffers.
  const arenaReads = tls === null;
  const server = net.createServer({ pauseOnConnect: arenaReads }, (socket) => {
    const conn = new NbdConnection(socket, (err) => report(err, { remote: conn.remote }), arenaReads);
    open.add(conn);
    let backend: NbdBackend | null = null;
    const timer = setTimeout(() => conn.destroy(), timeout);
    conn.onClose(() => {
      clearTimeout(timer);
      open.delete(conn);
      backend?.close();
    });
    negotiate(conn, config).then(
      (session) => {
        clearTimeout(timer);
        if (session === null) return conn.end();
        if (conn.closed) return session.backend.close();
        backend = session.backend;
        const transmission = new Transmission(conn, session, (err) => report(err, { remote: conn.remote }));
        attachSession(sessions, conn, session.backend, transmission);
        transmission.start();
      },
      (err) => {
        clearTimeout(timer);
        if (!isNbdError(err, 'CONNECTION_CLOSED')) report(err, { remote: conn.remote });
        conn.destroy();
      },
    );
  });
  server.on('error', (err) => report(err, { remote: 'listener' }));

  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 10809, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  return {
    host,
    port,
    url: (name) => `${tls ? 'nbds' : 'nbd'}://${urlHost}:${port}/${encodeURIComponent(name)}`,
    connections: () => open.size,
    sessions,
    close: async () => {
      shuttingDown = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const conn of open) conn.destroy();
      await closed;
    },
  };
}

export interface StartNbdServerOptions {
  pool: Pool;
  host?: string;
  port?: number;
  tls?: NbdTlsOptions;
  onError?: NbdServerOptions['onError'];
  sessions?: SessionRegistry;
}

/** Serves every vdisk of `pool` (and its snapshots, read-only, as `name@snapshot`). */
export async function startNbdServer(
  options: StartNbdServerOptions,
): Promise<NbdServer & { exports: EngineExports }> {
  const exports = new EngineExports(options.pool);
  const server = await createNbdServer({ ...options, exports });
  return Object.assign(server, { exports });
}
