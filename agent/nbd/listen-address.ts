/**
 * Where the NBD server listens: a Unix socket (the default, access by file
 * mode and group: QEMU and libnbd connect with `nbd+unix:///NAME?socket=PATH`)
 * or TCP (clients authenticate with TLS). The socket is bound under a umask
 * that leaves it private, then given its mode and group, so no other user can
 * connect in between; a stale socket left by a killed agent is replaced, any
 * other file at the path is not.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { NbdError } from './errors';

export const DEFAULT_NBD_SOCKET = '/run/snapsync/nbd.sock';

export type NbdListenAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

/** Parses `--nbd` values: `unix:/path`, `host:port`, `[v6]:port`, `port`, `host`; empty: the default socket. */
export function parseNbdListen(value: string): NbdListenAddress {
  if (value === '') return { kind: 'unix', path: DEFAULT_NBD_SOCKET };
  if (value.startsWith('unix:')) {
    const file = value.slice('unix:'.length);
    if (!path.isAbsolute(file))
      throw new NbdError('INVALID_ADDRESS', `NBD socket "${file}" must be an absolute path (unix:/run/…)`);
    return { kind: 'unix', path: file };
  }
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(value);
  if (v6) return { kind: 'tcp', host: v6[1]!, port: v6[2] ? Number(v6[2]) : 10809 };
  if (/^\d+$/.test(value)) return { kind: 'tcp', host: '127.0.0.1', port: Number(value) };
  const at = value.lastIndexOf(':');
  if (at < 0) return { kind: 'tcp', host: value, port: 10809 };
  const port = Number(value.slice(at + 1));
  if (!/^\d+$/.test(value.slice(at + 1)) || port > 65535)
    throw new NbdError('INVALID_ADDRESS', `bad NBD port in "${value}" (expected host:port or unix:/path)`);
  return { kind: 'tcp', host: value.slice(0, at) || '127.0.0.1', port };
}

/** A group name or number as a gid (names through the system's group database). */
export function resolveGroup(group: string): number {
  if (/^\d+$/.test(group)) return Number(group);
  try {
    const entry = execFileSync('getent', ['group', group], { encoding: 'utf8', stdio: 'pipe' });
    const gid = Number(entry.split(':')[2]);
    if (Number.isInteger(gid)) return gid;
  } catch {
    // falls through to the error below
  }
  throw new NbdError('INVALID_ADDRESS', `no group "${group}" for the NBD socket`);
}

export interface UnixSocketOptions {
  /** File mode of the socket (default 0o660). */
  mode?: number;
  /** Group (gid) of the socket; default: the agent's. */
  gid?: number;
}

/** Removes `file` if it is a socket nobody listens on; refuses anything else. */
async function clearStaleSocket(file: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new NbdError('INVALID_ADDRESS', `${file} exists and is not a socket`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = net.connect(file, () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new NbdError('INVALID_ADDRESS', `another server listens on ${file}`);
  fs.unlinkSync(file);
}

/** Listens on Unix socket `file` with its mode and group set before anyone but us could connect. */
export async function listenUnix(
  server: net.Server,
  file: string,
  options: UnixSocketOptions = {},
): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  await clearStaleSocket(file);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // bind() happens inside listen(), synchronously: the umask covers exactly that.
    const umask = process.umask(0o177);
    try {
      server.listen(file, () => {
        server.off('error', reject);
        resolve();
      });
    } finally {
      process.umask(umask);
    }
  });
  if (options.gid !== undefined) fs.chownSync(file, -1, options.gid);
  fs.chmodSync(file, options.mode ?? 0o660);
}
