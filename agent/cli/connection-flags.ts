/** The connection limit and timeout flags of `serve` for the WebSocket listener. */
import type { Argv } from 'yargs';
import { type AgentConnectionLimits, CONNECTION_DEFAULTS } from '../server/server';
import { UsageError } from './usage-error';

export interface ConnectionFlags {
  handshakeTimeout: number;
  idleTimeout: number;
  maxConnectionsPerAddress: number;
  maxConnections: number;
}

export function connectionFlags<T>(y: Argv<T>): Argv<T> {
  return y
    .option('handshake-timeout', {
      type: 'number',
      default: CONNECTION_DEFAULTS.handshakeTimeoutMs / 1000,
      describe: 'Seconds from TCP connect to an authenticated WebSocket (TLS, HTTP, upgrade)',
    })
    .option('idle-timeout', {
      type: 'number',
      default: CONNECTION_DEFAULTS.idleTimeoutMs / 1000,
      describe: 'Seconds after which a WebSocket client that sends nothing (no request, no pong) is closed',
    })
    .option('max-connections-per-address', {
      type: 'number',
      default: CONNECTION_DEFAULTS.maxConnectionsPerAddress,
      describe: 'Open connections per client address on --listen',
    })
    .option('max-connections', {
      type: 'number',
      default: CONNECTION_DEFAULTS.maxConnections,
      describe: 'Open connections in all on --listen',
    });
}

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
