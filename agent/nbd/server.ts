/**
 * The NBD server: a TCP listener, one handshake then one transmission per
 * connection. A client's mistakes cost that client its request or its
 * connection, never the process.
 */
import * as net from 'node:net';
import type { Pool } from '../engine';
import { ConnectionLimits } from '../server/connection-limits';
import { loopbackOnly, type NbdAccessOptions, serverAccess } from './access-policy';
import { attachSession } from './attach';
import type { NbdBackend, NbdExports } from './backend';
import { NbdConnection } from './connection';
import { EngineExports } from './engine-backend';
import { isNbdError, NbdError } from './errors';
import { fencedMessage } from './fences';
import { negotiate } from './handshake';
import { listenUnix } from './listen-address';
import { TransmissionThreads } from './relay/threads';
import { SessionRegistry } from './sessions';
import { type NbdTlsOptions, tlsPolicy } from './tls';
import { DEFAULT_TRANSMISSION_LIMITS, Transmission } from './transmission';

const DEFAULT_TRANSMISSION_THREADS = 16;

export interface NbdServerOptions extends NbdAccessOptions {
  exports: NbdExports;
  /** Listen on this Unix socket instead of TCP (host/port are then ignored). */
  socketPath?: string;
  /** Mode (default 0o660) and group of the Unix socket. */
  socketMode?: number;
  socketGid?: number;
  /**
   * Authenticated connections (TLS established, or an export chosen) one peer
   * address may hold, and as many not yet authenticated: for a new one the
   * oldest of those is closed (default 128; Unix socket clients, authenticated
   * by the socket's permissions, count against the total only).
   */
  maxConnectionsPerAddress?: number;
  /** The same in all (default 1024). */
  maxConnections?: number;
  /** A connection turned away or evicted by the limits (at most one call per connection). */
  onRefused?: (reason: string, remote: string) => void;
  /** A client asked for a fenced export and was refused (fences.ts). Default: one line on stderr. */
  onFenced?: (message: string, remote: string, exportName: string) => void;
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
  /**
   * Threads that serve connections once they read (relay/threads.ts): at
   * most this many connections are served off the event loop at once
   * (default 16; 0: all on the event loop).
   */
  transmissionThreads?: number;
  /** Requests one connection may have running before the agent stops reading its requests (default 64). */
  maxInFlight?: number;
  /** Bytes of READ replies one connection may have being read or not yet taken by its client before the agent stops reading its requests (default 64 MiB). */
  maxReplyBytes?: number;
}

export interface NbdServer {
  /** TCP address ('' and 0 on a Unix socket). */
  readonly host: string;
  readonly port: number;
  /** The Unix socket, or null on TCP. */
  readonly socketPath: string | null;
  /** nbd:// (nbds://, nbd+unix://) URL of an export on this server. */
  url(exportName: string): string;
  /** Open client connections. */
  connections(): number;
  /** Sessions in transmission, by what they are bound to. */
  readonly sessions: SessionRegistry;
  /** Transmission threads (relay/threads.ts): started, serving a connection now, reads they answered. */
  threadStats(): { threads: number; connections: number; reads: number };
  /** Stops listening and drops every connection. */
  close(): Promise<void>;
}

export async function createNbdServer(options: NbdServerOptions): Promise<NbdServer> {
  const tls = options.tls ? tlsPolicy(options.tls) : null;
  const host = options.host ?? '127.0.0.1';
  // --- access control (access-policy.ts): who may connect, which exports each client sees ---
  const socketPath = options.socketPath ?? null;
  if (socketPath === null && !tls?.authenticatesClients && !(options.insecureNoAuth && loopbackOnly(host)))
    throw new NbdError(
      'AUTH_REQUIRED',
      options.insecureNoAuth
        ? `NBD without client authentication is only allowed on a loopback address, not ${host}`
        : `NBD on TCP (${host}) needs client authentication: TLS with a client CA or PSK keys`,
    );
  const access = serverAccess(options, tls);
  const limits = new ConnectionLimits({
    perAddress: options.maxConnectionsPerAddress ?? 128,
    total: options.maxConnections ?? 1024,
  });
  // --- end access control ---
  const timeout = options.handshakeTimeoutMs ?? 30_000;
  const report =
    options.onError ??
    ((err: unknown, context: { remote: string }) =>
      console.error(`nbd: ${context.remote}: ${err instanceof Error ? err.message : String(err)}`));
  const open = new Set<NbdConnection>();
  const sessions = options.sessions ?? new SessionRegistry();
  const threads = new TransmissionThreads(
    options.transmissionThreads ?? DEFAULT_TRANSMISSION_THREADS,
    (err) => report(err, { remote: 'transmission thread' }),
  );
  let shuttingDown = false;
  const config = { exports: options.exports, tls, shuttingDown: () => shuttingDown };
  const onFenced =
    options.onFenced ?? ((message: string, remote: string) => console.error(`nbd: ${remote}: ${message}`));
  // A forced detach fenced the export: a reconnecting hypervisor must not reach the changed disk.
  const fencedFor = (conn: NbdConnection) => (name: string) => {
    const fence = sessions.fences.get(name);
    if (fence === null) return null;
    const message = fencedMessage(fence);
    onFenced(message, conn.remote, name);
    return message;
  };

  // Without TLS no socket is ever re-wrapped, so reads can go straight into our own buffers.
  const arenaReads = tls === null;
  const transmissionLimits = {
    maxInFlight: options.maxInFlight ?? DEFAULT_TRANSMISSION_LIMITS.maxInFlight,
    maxReplyBytes: options.maxReplyBytes ?? DEFAULT_TRANSMISSION_LIMITS.maxReplyBytes,
  };
  const server = net.createServer({ pauseOnConnect: arenaReads }, (socket) => {
    const address = socket.remoteAddress ?? null;
    // Unauthenticated until TLS is established or an export chosen: evicted for a newer one when its address's budget is full.
    const slot = limits.admit(address, () => {
      options.onRefused?.('unauthenticated-evicted', address ?? 'unix');
      conn.destroy();
    });
    if ('refused' in slot) {
      options.onRefused?.(slot.refused, address ?? 'unix');
      socket.destroy();
      return;
    }
    const conn = new NbdConnection(socket, (err) => report(err, { remote: conn.remote }), arenaReads);
    conn.onClose(slot.release);
    /** Moves the connection to the authenticated budget; false (and closed) when that is full. */
    const authenticated = () => {
      const refused = slot.authenticated();
      if (refused === null) return true;
      options.onRefused?.(refused, address ?? 'unix');
      conn.destroy();
      return false;
    };
    conn.onSecure = authenticated;
    open.add(conn);
    let backend: NbdBackend | null = null;
    const timer = setTimeout(() => conn.destroy(), timeout);
    conn.onClose(() => {
      clearTimeout(timer);
      open.delete(conn);
      backend?.close();
    });
    negotiate(conn, {
      ...config,
      exports: access.exportsFor(conn),
      fenced: fencedFor(conn),
      listed: (name) => sessions.fences.get(name) === null,
    }).then(
      (session) => {
        clearTimeout(timer);
        if (session === null) return conn.end();
        if (conn.closed || !authenticated()) return session.backend.close();
        backend = session.backend;
        const transmission = new Transmission(
          conn,
          session,
          (err) => report(err, { remote: conn.remote }),
          transmissionLimits,
        );
        attachSession(sessions, conn, session.backend, transmission);
        // A connection that reads moves to a thread of its own (relay/threads.ts); one that only writes stays here.
        transmission.onFirstRead = () =>
          threads.take({
            conn,
            backend: session.backend,
            structured: session.structured,
            busy: () => transmission.busy,
            idle: () => transmission.idle(),
            inFlight: () => transmission.inFlight,
            movable: () => transmission.movable,
          });
        transmission.start();
      },
      (err) => {
        clearTimeout(timer);
        // A fenced EXPORT_NAME was reported by onFenced already.
        if (!isNbdError(err, 'CONNECTION_CLOSED') && !isNbdError(err, 'EXPORT_FENCED'))
          report(err, { remote: conn.remote });
        conn.destroy();
      },
    );
  });
  server.on('error', (err) => report(err, { remote: 'listener' }));

  if (socketPath !== null) {
    await listenUnix(server, socketPath, {
      ...(options.socketMode !== undefined ? { mode: options.socketMode } : {}),
      ...(options.socketGid !== undefined ? { gid: options.socketGid } : {}),
    });
  } else {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 10809, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }
  const port = socketPath === null ? (server.address() as net.AddressInfo).port : 0;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  return {
    host: socketPath === null ? host : '',
    port,
    socketPath,
    url: (name) =>
      socketPath === null
        ? `${tls ? 'nbds' : 'nbd'}://${urlHost}:${port}/${encodeURIComponent(name)}`
        : `${tls ? 'nbds+unix' : 'nbd+unix'}:///${encodeURIComponent(name)}?socket=${socketPath}`,
    connections: () => open.size,
    sessions,
    threadStats: () => ({ threads: threads.count, connections: threads.serving, reads: threads.reads }),
    close: async () => {
      shuttingDown = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const conn of open) conn.destroy();
      await Promise.all([closed, threads.close()]);
    },
  };
}

export type StartNbdServerOptions = Omit<NbdServerOptions, 'exports'> & { pool: Pool };

/** Serves every vdisk of `pool` (and its snapshots, read-only, as `name@snapshot`). */
export async function startNbdServer(
  options: StartNbdServerOptions,
): Promise<NbdServer & { exports: EngineExports }> {
  const exports = new EngineExports(options.pool);
  const server = await createNbdServer({ ...options, exports });
  return Object.assign(server, { exports });
}
