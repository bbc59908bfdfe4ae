/**
 * Guards the agent's HTTP(S) listener below HTTP: every accepted TCP
 * connection takes a slot of the unauthenticated budget (connection-limits.ts:
 * a full budget closes the address's oldest unauthenticated connection) and
 * is closed if it has not authenticated within the handshake timeout (TLS,
 * HTTP request and the upgrade's token check). Plain HTTP requests
 * (/healthz, /metrics) finish well within it. A connection whose upgrade
 * passed the token check moves to the authenticated budget, or is refused.
 */
import type * as net from 'node:net';
import {
  type ConnectionLimitOptions,
  ConnectionLimits,
  type ConnectionSlot,
  type LimitRefusal,
  RefusalLog,
} from './connection-limits';

export interface ConnectionGuardOptions extends ConnectionLimitOptions {
  /** Time from accept to an authenticated WebSocket upgrade. */
  handshakeTimeoutMs: number;
  /** Every refused, evicted or timed-out connection, by reason (for the metric). */
  countRefusal(reason: string): void;
  /** The same, throttled per address for the log (`refused`: how many since the last line). */
  onRefused(fields: { remote: string; reason: string; refused: number }): void;
}

export interface ConnectionGuard {
  /**
   * The upgrade on this socket passed the token check: no handshake deadline
   * any more, and a slot of the authenticated budget, or why not (the caller
   * answers and closes).
   */
  authenticated(socket: net.Socket): LimitRefusal | null;
}

/** Key that names one TCP connection whether seen as the raw socket or as its TLS wrapper. */
const connectionKey = (socket: net.Socket) => `${socket.remoteAddress}|${socket.remotePort}`;

export function guardConnections(server: net.Server, options: ConnectionGuardOptions): ConnectionGuard {
  const limits = new ConnectionLimits(options);
  const log = new RefusalLog(options.onRefused);
  const refuse = (remote: string, reason: string) => {
    options.countRefusal(reason);
    log.refused(remote, reason);
  };
  const unauthenticated = new Map<string, { slot: ConnectionSlot; timer: NodeJS.Timeout }>();
  // 'connection' is the raw TCP socket, before TLS and HTTP, for http and https servers alike.
  server.on('connection', (socket: net.Socket) => {
    const remote = socket.remoteAddress ?? 'unknown';
    const slot = limits.admit(remote, () => {
      refuse(remote, 'unauthenticated-evicted');
      socket.destroy();
    });
    if ('refused' in slot) {
      refuse(remote, slot.refused);
      socket.destroy();
      return;
    }
    const key = connectionKey(socket);
    const timer = setTimeout(() => {
      unauthenticated.delete(key);
      refuse(remote, 'handshake-timeout');
      socket.destroy();
    }, options.handshakeTimeoutMs);
    timer.unref();
    const entry = { slot, timer };
    unauthenticated.set(key, entry);
    socket.once('close', () => {
      slot.release();
      clearTimeout(timer);
      if (unauthenticated.get(key) === entry) unauthenticated.delete(key);
    });
  });
  return {
    authenticated: (socket) => {
      const key = connectionKey(socket);
      const entry = unauthenticated.get(key);
      if (entry === undefined) return null; // authenticated before (or gone: its close does the rest)
      clearTimeout(entry.timer);
      unauthenticated.delete(key);
      const refused = entry.slot.authenticated();
      if (refused) refuse(socket.remoteAddress ?? 'unknown', refused);
      return refused;
    },
  };
}
