/**
 * Which exports one NBD connection sees. On a server whose clients must
 * authenticate (TLS with a client CA or PSK keys), a connection sees nothing
 * until TLS has proved who it is, then what the access list grants that
 * identity (everything without a list). A server without client
 * authentication (a Unix socket, guarded by its file mode and group, or TCP
 * with the explicit loopback opt-out) shows every export.
 */
import { isLoopback } from '../server/loopback';
import { NbdAccessList, restrictExports } from './access-list';
import type { NbdExports } from './backend';
import { clientIdentity } from './client-auth';
import type { NbdConnection } from './connection';
import type { TlsPolicy } from './tls';

export interface NbdAccessOptions {
  /** TCP without client authentication, loopback only (benchmarks, tests): logged loudly by serve. */
  insecureNoAuth?: boolean;
  /** Per-client export lists for authenticated clients (see access-list.ts). */
  accessList?: NbdAccessList;
}

export const loopbackOnly = (host: string) => isLoopback(host);

export function serverAccess(
  options: NbdAccessOptions & { exports: NbdExports },
  tls: TlsPolicy | null,
): { exportsFor(conn: NbdConnection): NbdExports } {
  const mustAuthenticate = tls?.authenticatesClients ?? false;
  const list = options.accessList ?? null;
  const visible = (conn: NbdConnection, name: string): boolean => {
    if (!mustAuthenticate) return true;
    const identity = clientIdentity(conn.tls ? conn.stream : null);
    if (identity === null) return false;
    return list === null || list.allows(identity, name);
  };
  return {
    exportsFor: (conn) =>
      mustAuthenticate ? restrictExports(options.exports, (name) => visible(conn, name)) : options.exports,
  };
}

export { NbdAccessList };
