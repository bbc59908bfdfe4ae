/**
 * Guards the agent's HTTP(S) listener below HTTP: every accepted TCP
 * connection takes a slot of the per-address and total limits, and one that
 * has not become a WebSocket within the handshake timeout (TLS, HTTP request
 * and upgrade) is closed. Plain HTTP requests (/healthz, /metrics) finish
 * well within it.
 */
import type * as net from 'node:net';
import { type ConnectionLimitOptions, ConnectionLimits, RefusalLog } from './connection-limits';

export interface ConnectionGuardOptions extends ConnectionLimitOptions {
  /** Time from accept to a completed WebSocket upgrade. */
  handshakeTimeoutMs: number;
  /** Every refused connection and timed-out handshake, by reason (for the metric). */
  countRefusal(reason: string): void;
  /** The same, throttled per address for the log (`refused`: how many since the last line). */
  onRefused(fields: { remote: string; reason: string; refused: number }): void;
}

export interface ConnectionGuard {
  /** The connection of this (upgraded) socket is a WebSocket now: no handshake deadline any more. */
  upgraded(socket: net.Socket): void;
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
  const deadlines = new Map<string, NodeJS.Timeout>();
  // 'connection' is the raw TCP socket, before TLS and HTTP, for http and https servers alike.
  server.on('connection', (socket: net.Socket) => {
    const remote = socket.remoteAddress ?? 'unknown';
    const slot = limits.admit(remote);
    if ('refused' in slot) {
      refuse(remote, slot.refused);
      socket.destroy();
      return;
    }
    const key = connectionKey(socket);
    const timer = setTimeout(() => {
      deadlines.delete(key);
      refuse(remote, 'handshake-timeout');
      socket.destroy();
    }, options.handshakeTimeoutMs);
    timer.unref();
    deadlines.set(key, timer);
    socket.once('close', () => {
      slot.release();
      clearTimeout(timer);
      if (deadlines.get(key) === timer) deadlines.delete(key);
    });
  });
  return {
    upgraded: (socket) => {
      const key = connectionKey(socket);
      clearTimeout(deadlines.get(key));
      deadlines.delete(key);
    },
  };
}
