/** The connection limit and timeout flags of `serve` for the WebSocket listener. */
import type { Options } from 'yargs';
import { type AgentConnectionLimits, CONNECTION_DEFAULTS } from '../server/server';
import { UsageError } from './usage-error';

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
  const positive = (value: number, flag: string) => {
    if (!Number.isFinite(value) || value <= 0) throw new UsageError(`${flag} must be a positive number`);
    return value;
  };
  return {
    handshakeTimeoutMs: positive(args.handshakeTimeout, '--handshake-timeout') * 1000,
    idleTimeoutMs: positive(args.idleTimeout, '--idle-timeout') * 1000,
    maxConnectionsPerAddress: Math.floor(
      positive(args.maxConnectionsPerAddress, '--max-connections-per-address'),
    ),
    maxConnections: Math.floor(positive(args.maxConnections, '--max-connections')),
  };
}
