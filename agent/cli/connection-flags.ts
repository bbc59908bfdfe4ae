/** The connection limit and timeout flags of `serve` for the WebSocket listener. */
import type { Options } from 'yargs';
import { type AgentConnectionLimits, CONNECTION_DEFAULTS } from '../server/server';
import { secondsAsMs, wholeNumber } from './number-flags';

export interface ConnectionFlags {
  handshakeTimeout: number;
  idleTimeout: number;
  maxConnectionsPerAddress: number;
  maxConnections: number;
}

/** The connection limit options of serve (yargs `.options()`). */
export const CONNECTION_FLAG_OPTIONS = {
  'handshake-timeout': {
    type: 'number',
    default: CONNECTION_DEFAULTS.handshakeTimeoutMs / 1000,
    describe: 'Seconds from TCP connect to an authenticated WebSocket (TLS, HTTP, upgrade)',
  },
  'idle-timeout': {
    type: 'number',
    default: CONNECTION_DEFAULTS.idleTimeoutMs / 1000,
    describe: 'Seconds after which a WebSocket client that sends nothing (no request, no pong) is closed',
  },
  'max-connections-per-address': {
    type: 'number',
    default: CONNECTION_DEFAULTS.maxConnectionsPerAddress,
    describe: 'Open connections per client address on --listen',
  },
  'max-connections': {
    type: 'number',
    default: CONNECTION_DEFAULTS.maxConnections,
    describe: 'Open connections in all on --listen',
  },
} as const satisfies Record<string, Options>;

export function connectionLimits(args: ConnectionFlags): AgentConnectionLimits {
  return {
    handshakeTimeoutMs: secondsAsMs(args.handshakeTimeout, '--handshake-timeout'),
    idleTimeoutMs: secondsAsMs(args.idleTimeout, '--idle-timeout'),
    maxConnectionsPerAddress: wholeNumber(args.maxConnectionsPerAddress, '--max-connections-per-address', 1),
    maxConnections: wholeNumber(args.maxConnections, '--max-connections', 1),
  };
}
