/** NBD export of snapsync vdisks (see README "NBD"). */
export type { NbdBackend, NbdExportInfo, NbdExports, NbdExtent } from './backend';
export { EngineExports } from './engine-backend';

import { NbdError } from './errors';

export { NbdAccessList } from './access-list';
export { clientIdentity, loadPskKeys, parsePskKeys } from './client-auth';
export { isNbdError, NBD_ERROR_CODES, NbdError, type NbdErrorCode, toNbdErrno } from './errors';
export {
  DEFAULT_NBD_SOCKET,
  type NbdListenAddress,
  parseNbdListen,
  resolveGroup,
} from './listen-address';
export {
  createNbdServer,
  type NbdServer,
  type NbdServerOptions,
  type StartNbdServerOptions,
  startNbdServer,
} from './server';
export type { NbdTlsOptions } from './tls';
export { DEFAULT_TRANSMISSION_LIMITS, type TransmissionLimits } from './transmission';

/** Parses `--nbd` values: `host:port`, `[v6]:port`, `port`, or `host` (port 10809). */
export function parseNbdAddress(value: string): { host: string; port: number } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(value);
  if (v6) return { host: v6[1]!, port: v6[2] ? Number(v6[2]) : 10809 };
  if (/^\d+$/.test(value)) return { host: '127.0.0.1', port: Number(value) };
  const at = value.lastIndexOf(':');
  if (at < 0) return { host: value, port: 10809 };
  const port = Number(value.slice(at + 1));
  if (!/^\d+$/.test(value.slice(at + 1)) || port > 65535)
    throw new NbdError('INVALID_ADDRESS', `bad NBD port in "${value}" (expected host:port)`);
  return { host: value.slice(0, at) || '127.0.0.1', port };
}
