/**
 * The NBD flags of `serve` and what they must agree on. NBD has no token:
 * who may connect is decided by where it listens — a Unix socket (default
 * /run/snapsync/nbd.sock, mode 0660, a group the hypervisor's user is in) or
 * TCP, where every client authenticates with TLS (an x509 client certificate
 * the --nbd-tls-ca verifies, or a TLS-PSK key) and sees only the exports the
 * --nbd-access file grants it. TCP without authentication needs
 * --nbd-insecure-no-auth and a loopback address, and is logged as a warning.
 */
import * as fs from 'node:fs';
import type { Options } from 'yargs';
import {
  DEFAULT_NBD_SOCKET,
  DEFAULT_TRANSMISSION_LIMITS,
  loadPskKeys,
  NbdAccessList,
  type NbdListenAddress,
  parseNbdListen,
  resolveGroup,
  type StartNbdServerOptions,
} from '../nbd';
import { isLoopback } from '../server/loopback';
import { secondsAsMs, wholeNumber } from './number-flags';
import { UsageError } from './usage-error';

export interface NbdFlags {
  nbd?: string;
  nbdSocketMode: string;
  nbdSocketGroup?: string;
  nbdTlsCert?: string;
  nbdTlsKey?: string;
  nbdTlsCa?: string;
  nbdTlsPskFile?: string;
  nbdAccess?: string;
  nbdInsecureNoAuth?: boolean;
  nbdHandshakeTimeout: number;
  nbdMaxConnectionsPerAddress: number;
  nbdMaxConnections: number;
  nbdThreads: number;
  nbdMaxInFlight: number;
  nbdMaxReplyBytes: number;
}

/** The NBD options of serve (yargs `.options()`). */
export const NBD_FLAG_OPTIONS = {
  nbd: {
    type: 'string',
    describe: `Also export vdisks over NBD: unix:PATH (alone: unix:${DEFAULT_NBD_SOCKET}) or HOST:PORT (TCP: clients authenticate with TLS)`,
  },
  'nbd-socket-mode': { type: 'string', default: '0660', describe: 'File mode of the NBD Unix socket' },
  'nbd-socket-group': {
    type: 'string',
    describe: 'Group (name or gid) of the NBD Unix socket: the group of the hypervisor user',
  },
  'nbd-tls-cert': { type: 'string', describe: 'PEM server certificate for NBD (default --tls-cert)' },
  'nbd-tls-key': { type: 'string', describe: 'PEM key for --nbd-tls-cert (default --tls-key)' },
  'nbd-tls-ca': {
    type: 'string',
    describe: 'PEM CA: NBD clients over TCP must present a certificate it signed',
  },
  'nbd-tls-psk-file': {
    type: 'string',
    describe: 'TLS-PSK keys (identity:hexkey lines, QEMU keys.psk / psktool format); instead of --nbd-tls-ca',
  },
  'nbd-access': {
    type: 'string',
    describe: 'NBD access file: per client (cn:NAME / psk:NAME) the exports it may list and open',
  },
  'nbd-insecure-no-auth': {
    type: 'boolean',
    describe: 'NBD on loopback TCP without client authentication (benchmarks only; logged as a warning)',
  },
  'nbd-handshake-timeout': {
    type: 'number',
    default: 30,
    describe: 'Seconds an NBD client may take to pick an export (transmission itself has no idle limit)',
  },
  'nbd-max-connections-per-address': {
    type: 'number',
    default: 128,
    describe: 'Open NBD connections per client address',
  },
  'nbd-max-connections': { type: 'number', default: 1024, describe: 'Open NBD connections in all' },
  'nbd-threads': {
    type: 'number',
    default: 16,
    describe:
      'NBD connections served by threads of their own once they read (reads answered there); more stay on the event loop; 0: none',
  },
  'nbd-max-in-flight': {
    type: 'number',
    default: DEFAULT_TRANSMISSION_LIMITS.maxInFlight,
    describe:
      'NBD requests one connection may have running; beyond it its requests are not read until one is answered',
  },
  'nbd-max-reply-bytes': {
    type: 'number',
    default: DEFAULT_TRANSMISSION_LIMITS.maxReplyBytes,
    describe:
      'Bytes of read replies one NBD connection may have being read or not yet taken by its client; beyond it its requests are not read until it takes them',
  },
} as const satisfies Record<string, Options>;

const read = (file: string, flag: string) => {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new UsageError(`${flag} ${file}: ${(err as Error).message}`);
  }
};

/** Re-throws a parse error of a file or address as a usage error. */
function usage<T>(flag: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new UsageError(`${flag}: ${(err as Error).message}`);
  }
}

/** Below 1 MiB even one 1 MiB read at a time would wait for the last reply to go out; above 1 GiB a relayed connection's 32-bit counters could overflow (relay/relay.ts). */
const MIN_REPLY_BYTES = 1024 * 1024;
const MAX_REPLY_BYTES = 1024 * 1024 * 1024;

export interface NbdServeSettings {
  address: NbdListenAddress;
  options: Omit<StartNbdServerOptions, 'pool'>;
  /** How clients authenticate, for the startup log. */
  auth: 'unix-socket' | 'x509' | 'psk' | 'none';
}

/** Checks the NBD flags (before the pool opens); null when NBD is off. */
export function nbdSettings(args: NbdFlags & { tlsCert?: string; tlsKey?: string }): NbdServeSettings | null {
  // Checked with NBD off too: a bad value is a mistake whether or not it is used.
  const limits = {
    handshakeTimeoutMs: secondsAsMs(args.nbdHandshakeTimeout, '--nbd-handshake-timeout'),
    maxConnectionsPerAddress: wholeNumber(
      args.nbdMaxConnectionsPerAddress,
      '--nbd-max-connections-per-address',
      1,
    ),
    maxConnections: wholeNumber(args.nbdMaxConnections, '--nbd-max-connections', 1),
    transmissionThreads: wholeNumber(args.nbdThreads, '--nbd-threads', 0, 1024),
    maxInFlight: wholeNumber(args.nbdMaxInFlight, '--nbd-max-in-flight', 1, 65536),
    maxReplyBytes: wholeNumber(
      args.nbdMaxReplyBytes,
      '--nbd-max-reply-bytes',
      MIN_REPLY_BYTES,
      MAX_REPLY_BYTES,
    ),
  };
  if (!/^0?[0-7]{3}$/.test(args.nbdSocketMode))
    throw new UsageError(`--nbd-socket-mode "${args.nbdSocketMode}" is not an octal mode such as 0660`);
  if (args.nbd === undefined) return null;
  const address = usage('--nbd', () => parseNbdListen(args.nbd!));
  if (address.kind === 'unix') {
    for (const [flag, given] of [
      ['--nbd-tls-ca', args.nbdTlsCa],
      ['--nbd-tls-psk-file', args.nbdTlsPskFile],
      ['--nbd-access', args.nbdAccess],
      ['--nbd-insecure-no-auth', args.nbdInsecureNoAuth],
    ] as const)
      if (given)
        throw new UsageError(
          `${flag} is for NBD on TCP; the Unix socket ${address.path} is guarded by its mode and group`,
        );
    return {
      address,
      auth: 'unix-socket',
      options: {
        ...limits,
        socketPath: address.path,
        socketMode: Number.parseInt(args.nbdSocketMode, 8),
        ...(args.nbdSocketGroup !== undefined
          ? { socketGid: usage('--nbd-socket-group', () => resolveGroup(args.nbdSocketGroup!)) }
          : {}),
      },
    };
  }
  if (args.nbdSocketGroup !== undefined)
    throw new UsageError('--nbd-socket-group is for a Unix socket (--nbd unix:PATH)');
  const authenticated = Boolean(args.nbdTlsCa || args.nbdTlsPskFile);
  if (args.nbdInsecureNoAuth) {
    if (authenticated)
      throw new UsageError('--nbd-insecure-no-auth contradicts --nbd-tls-ca / --nbd-tls-psk-file: pick one');
    if (!isLoopback(address.host))
      throw new UsageError(
        `--nbd-insecure-no-auth is only allowed on a loopback --nbd address, not ${address.host}`,
      );
    if (args.nbdAccess)
      throw new UsageError('--nbd-access needs authenticated clients, not --nbd-insecure-no-auth');
    return {
      address,
      auth: 'none',
      options: { ...limits, host: address.host, port: address.port, insecureNoAuth: true },
    };
  }
  if (!authenticated)
    throw new UsageError(
      `--nbd ${args.nbd} is TCP, where NBD clients must authenticate: give --nbd-tls-ca (client certificates) or --nbd-tls-psk-file, or serve a Unix socket (--nbd unix:PATH); --nbd-insecure-no-auth only on loopback`,
    );
  if (args.nbdTlsCa && args.nbdTlsPskFile)
    throw new UsageError(
      '--nbd-tls-ca and --nbd-tls-psk-file: one NBD listener authenticates clients one way (x509 or PSK)',
    );
  const certFile = args.nbdTlsCert ?? args.tlsCert;
  const keyFile = args.nbdTlsKey ?? args.tlsKey;
  if (Boolean(args.nbdTlsCert) !== Boolean(args.nbdTlsKey))
    throw new UsageError('--nbd-tls-cert and --nbd-tls-key go together: give both or neither');
  if (args.nbdTlsCa && !(certFile && keyFile))
    throw new UsageError(
      '--nbd-tls-ca needs a server certificate: --nbd-tls-cert/--nbd-tls-key (or --tls-cert/--tls-key)',
    );
  const psk = args.nbdTlsPskFile
    ? usage('--nbd-tls-psk-file', () => loadPskKeys(args.nbdTlsPskFile!))
    : undefined;
  const accessList = args.nbdAccess
    ? usage('--nbd-access', () =>
        NbdAccessList.parse(read(args.nbdAccess!, '--nbd-access').toString('utf8'), args.nbdAccess),
      )
    : undefined;
  return {
    address,
    auth: args.nbdTlsCa ? 'x509' : 'psk',
    options: {
      ...limits,
      host: address.host,
      port: address.port,
      tls: {
        ...(certFile && keyFile
          ? { cert: read(certFile, '--nbd-tls-cert'), key: read(keyFile, '--nbd-tls-key') }
          : {}),
        ...(args.nbdTlsCa ? { ca: read(args.nbdTlsCa, '--nbd-tls-ca') } : {}),
        ...(psk ? { psk } : {}),
      },
      ...(accessList ? { accessList } : {}),
    },
  };
}
