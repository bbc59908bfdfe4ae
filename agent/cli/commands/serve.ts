import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { DEFAULT_COMMIT_INTERVAL_MS, Pool } from '../../engine';
import { createIdentityHooks } from '../../identity';
import { type NbdServer, startNbdServer } from '../../nbd';
import { NbdError } from '../../nbd/errors';
import { FENCE_FILE, Fences } from '../../nbd/fences';
import { SessionRegistry } from '../../nbd/sessions';
import { unixPeersKnown } from '../../nbd/unix-peer';
import { RefusalLog } from '../../server/connection-limits';
import { MIN_MESSAGE_BYTES } from '../../server/framing';
import { Logger } from '../../server/logger';
import { isLoopback } from '../../server/loopback';
import {
  DEFAULT_MAX_HELD_BYTES,
  DEFAULT_MAX_HELD_BYTES_TOTAL,
  type RunningAgent,
  startAgentServer,
} from '../../server/server';
import { CONNECTION_FLAG_OPTIONS, type ConnectionFlags, connectionLimits } from '../connection-flags';
import { EXIT } from '../exit-codes';
import { warnNbdSocketMode, warnPlaintextListener, warnPoolNotPrivate } from '../exposure-warnings';
import { NBD_FLAG_OPTIONS, type NbdFlags, type NbdServeSettings, nbdSettings } from '../nbd-flags';
import { wholeNumber } from '../number-flags';
import { serveToken } from '../serve-token';
import { UsageError } from '../usage-error';

interface ServeArgs extends NbdFlags, ConnectionFlags {
  pool: string;
  listen: string;
  tokenFile?: string;
  insecureNoAuth?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  allowDir: string[];
  allowBlockDevices?: boolean;
  maxMessageBytes: number;
  maxInFlight: number;
  maxHeldBytes: number;
  maxHeldBytesTotal: number;
  commitInterval: number;
  json?: boolean;
}

function hostPort(text: string): { host: string; port: number } {
  const at = text.lastIndexOf(':');
  const host = text.slice(0, at).replace(/^\[|\]$/g, '') || '127.0.0.1';
  const port = Number(text.slice(at + 1));
  if (at < 0 || !/^\d+$/.test(text.slice(at + 1)) || port > 65535)
    throw new UsageError(`--listen "${text}" is not HOST:PORT (e.g. 127.0.0.1:7890)`);
  return { host, port };
}

/** --max-held-bytes-total: 1 MiB to 64 GiB, and no less than one connection may hold. */
function heldBytesTotal(total: number, perConnection: number): void {
  wholeNumber(total, '--max-held-bytes-total', 1024 * 1024, 64 * 1024 ** 3);
  if (total < perConnection)
    throw new UsageError(
      `--max-held-bytes-total must be at least --max-held-bytes (${perConnection}), not ${total}: all connections together may hold no less than one`,
    );
}

/** Everything the flags must agree on, checked before the pool is opened. */
function checkFlags(args: ServeArgs): {
  listen: { host: string; port: number };
  nbd: NbdServeSettings | null;
  tls: { cert: Buffer; key: Buffer } | undefined;
} {
  if (Boolean(args.tlsCert) !== Boolean(args.tlsKey))
    throw new UsageError('--tls-cert and --tls-key go together: give both (wss://) or neither');
  const listen = hostPort(args.listen);
  if (args.insecureNoAuth && !isLoopback(listen.host))
    throw new UsageError(
      `--insecure-no-auth is only allowed on a loopback --listen address, not ${listen.host}`,
    );
  // NBD has no token: a Unix socket's mode and group, or TLS client authentication on TCP (nbd-flags.ts).
  const nbd = nbdSettings(args);
  wholeNumber(args.maxMessageBytes, '--max-message-bytes', MIN_MESSAGE_BYTES);
  wholeNumber(args.maxInFlight, '--max-in-flight', 1, 65536);
  wholeNumber(args.maxHeldBytes, '--max-held-bytes', 1024 * 1024, 1024 * 1024 * 1024);
  heldBytesTotal(args.maxHeldBytesTotal, args.maxHeldBytes);
  const tls =
    args.tlsCert && args.tlsKey
      ? { cert: fs.readFileSync(args.tlsCert), key: fs.readFileSync(args.tlsKey) }
      : undefined;
  return { listen, nbd, tls };
}

/** Starts NBD as the flags say and logs how clients get in (loudly when they need no credentials). */
async function startNbd(
  pool: Pool,
  settings: NbdServeSettings,
  logger: Logger,
  sessions: SessionRegistry,
  countRefusal: (reason: string) => void,
): Promise<NbdServer> {
  const refusals = new RefusalLog((fields) => logger.warn('nbd connection refused', fields));
  // Keyed by export: a hypervisor retrying a fenced export logs once per interval, with a count.
  const fenced = new RefusalLog(({ remote, reason, refused }) =>
    logger.warn('nbd export fenced: connection refused', { export: remote, message: reason, refused }),
  );
  // A failing device or a full host fails every request of a busy guest: one line per connection and interval, with a count.
  const failures = new RefusalLog(({ remote, reason, refused }) =>
    logger.error('nbd request failed', { remote, error: reason, failed: refused }),
  );
  // A client that broke the protocol (bad request magic, data before STARTTLS) is its own fault, not the pool's.
  const violations = new RefusalLog(({ remote, reason, refused }) =>
    logger.warn('nbd client broke the protocol: connection dropped', {
      remote,
      error: reason,
      dropped: refused,
    }),
  );
  const nbd = await startNbdServer({
    pool,
    ...settings.options,
    sessions,
    onError: (err, { remote }) => {
      const code = (err as { code?: unknown })?.code;
      const message = err instanceof Error ? err.message : String(err);
      const log = code === 'PROTOCOL_VIOLATION' ? violations : failures;
      log.refused(remote, typeof code === 'string' ? `[${code}] ${message}` : message);
    },
    onRefused: (reason, remote) => {
      countRefusal(reason);
      refusals.refused(remote, reason);
    },
    onFenced: (message, _remote, exportName) => {
      countRefusal('fenced');
      fenced.refused(exportName, message);
    },
  });
  const url = nbd.url('');
  warnNbdSocketMode(logger, settings.options.socketMode, url);
  if (settings.auth === 'none')
    logger.warn(
      'NBD without client authentication (--nbd-insecure-no-auth): every local user can read and write every vdisk',
      { nbd: url },
    );
  else
    logger.info('nbd listening', {
      nbd: url,
      auth: settings.auth,
      ...(settings.options.accessList ? { accessClients: settings.options.accessList.clients() } : {}),
    });
  if (nbd.socketPath !== null && !unixPeersKnown())
    logger.warn(
      'nbd: the process behind a Unix-socket client cannot be known here (the optional koffi package is missing): each vdisk gets one writing connection, no multi-conn',
      { nbd: url },
    );
  return nbd;
}

export const serve: CommandModule<object, ServeArgs> = {
  command: 'serve',
  describe: 'Run the agent on a pool: WebSocket protocol, /healthz, /metrics, and optionally NBD',
  builder: (y) =>
    (y as Argv<object>)
      .option('pool', { type: 'string', demandOption: true, describe: 'Pool directory (made by init)' })
      .option('listen', {
        type: 'string',
        default: '127.0.0.1:7890',
        describe: 'HOST:PORT (port 0: any free port)',
      })
      .option('token-file', {
        type: 'string',
        describe: 'File holding the bearer token (else $SNAPSYNC_TOKEN)',
      })
      .option('insecure-no-auth', { type: 'boolean', describe: 'No token at all; loopback addresses only' })
      .option('tls-cert', { type: 'string', describe: 'PEM certificate: serve wss:// (and NBD over TLS)' })
      .option('tls-key', { type: 'string', describe: 'PEM private key for --tls-cert (both or neither)' })
      .option('allow-dir', {
        type: 'string',
        array: true,
        default: [] as string[],
        describe: 'Directory import/export may use (repeatable)',
      })
      .option('allow-block-devices', {
        type: 'boolean',
        describe:
          'Let import/export use block device nodes in the allowed directories (else regular files only)',
      })
      .option('max-message-bytes', {
        type: 'number',
        default: 33 * 1024 * 1024,
        describe: `Largest WebSocket frame a client may send (a bigger one closes the connection): a write's data plus its id; at least ${MIN_MESSAGE_BYTES}, what every JSON request needs`,
      })
      .option('max-in-flight', {
        type: 'number',
        default: 64,
        describe: 'Requests in flight per connection (1-65536)',
      })
      .option('max-held-bytes', {
        type: 'number',
        default: DEFAULT_MAX_HELD_BYTES,
        describe:
          'Bytes one connection may hold for its client (replies it has not taken, reads under way, write data; 1 MiB to 1 GiB): beyond it its requests are not read until it takes its replies',
      })
      .option('max-held-bytes-total', {
        type: 'number',
        default: DEFAULT_MAX_HELD_BYTES_TOTAL,
        describe:
          'Bytes all API connections may hold together (1 MiB to 64 GiB, at least --max-held-bytes): beyond it the requests of every connection that holds bytes are not read until replies are taken; one that holds nothing still gets one request, so the worst case is this plus one 32 MiB request per connection',
      })
      .option('commit-interval', {
        type: 'number',
        default: DEFAULT_COMMIT_INTERVAL_MS / 1000,
        describe:
          'Seconds a write may stay uncommitted when its client never flushes (the most an agent crash loses of such writes); 0: only a flush commits (0-3600)',
      })
      .options(NBD_FLAG_OPTIONS)
      .options(CONNECTION_FLAG_OPTIONS)
      .example(
        '$0 serve --pool /var/lib/snapsync --token-file /etc/snapsync/token',
        'serve on 127.0.0.1:7890',
      )
      .example('$0 serve --pool ./pool --listen 127.0.0.1:0 --insecure-no-auth', 'a throwaway local agent')
      .example(
        '$0 serve --pool /var/lib/snapsync --token-file /etc/snapsync/token --nbd unix:/run/snapsync/nbd.sock --nbd-socket-group kvm',
        'NBD on a Unix socket (mode 0660, group kvm): qemu connects with nbd+unix:///VDISK?socket=…',
      )
      .example(
        '$0 serve --pool /var/lib/snapsync --token-file /etc/snapsync/token --tls-cert cert.pem --tls-key key.pem --listen 0.0.0.0:7890 --nbd 0.0.0.0:10809 --nbd-tls-ca clients-ca.pem --nbd-access /etc/snapsync/nbd-access',
        'wss:// and NBD over TLS on every interface; NBD clients present certificates signed by clients-ca.pem',
      ) as unknown as Argv<ServeArgs>,
  handler: async (args: ArgumentsCamelCase<ServeArgs>) => {
    const logger = new Logger();
    const token = args.insecureNoAuth ? null : serveToken(args.tokenFile, logger);
    if (token === null && !args.insecureNoAuth)
      throw new UsageError(
        'a token is required: --token-file FILE or $SNAPSYNC_TOKEN (or --insecure-no-auth on loopback)',
      );
    const { listen, nbd: nbdAt, tls } = checkFlags(args);
    const limits = connectionLimits(args);
    // One registry: the agent refuses (or with force drains) what would change under an attached client.
    // Its fences live in the pool directory (only written under the pool lock): they survive a restart.
    const sessions = new SessionRegistry(new Fences(path.join(args.pool, FENCE_FILE)));
    const commitInterval = args.commitInterval;
    if (!Number.isFinite(commitInterval) || commitInterval < 0 || commitInterval > 3600)
      throw new UsageError(`--commit-interval ${commitInterval}: seconds from 0 to 3600`);
    const pool = Pool.open(args.pool, { commitIntervalMs: Math.round(commitInterval * 1000) });
    warnPoolNotPrivate(logger, args.pool, pool.info().dataFiles);
    pool.onBackgroundError = (err) => logger.error('background work failed', { error: String(err) });
    pool.onDamage = (err) =>
      logger.error('damaged map record: its block fails with CORRUPT (run fsck)', {
        error: err.message,
        ...err.details,
      });
    if (pool.discardedAtOpen.length > 0)
      logger.warn('removed containers of interrupted imports', { containers: pool.discardedAtOpen });
    if (pool.migratedFrom !== null)
      logger.warn("migrated the pool to this build's on-disk format (older builds can no longer open it)", {
        from: pool.migratedFrom,
        to: pool.info().formatVersion,
      });
    if (pool.restoredAtOpen.length > 0)
      logger.warn('restored containers an interrupted import had changed', {
        containers: pool.restoredAtOpen,
      });
    let running: RunningAgent | null = null;
    let nbd: NbdServer | null = null;
    try {
      running = await startAgentServer({
        pool,
        ...listen,
        token,
        insecureNoAuth: args.insecureNoAuth,
        tls,
        allowDirs: args.allowDir,
        allowBlockDevices: args.allowBlockDevices,
        maxMessageBytes: args.maxMessageBytes,
        maxInFlight: args.maxInFlight,
        maxHeldBytes: args.maxHeldBytes,
        maxHeldBytesTotal: args.maxHeldBytesTotal,
        agentFiles: [
          args.tokenFile,
          args.tlsCert,
          args.tlsKey,
          args.nbdTlsCert,
          args.nbdTlsKey,
          args.nbdTlsCa,
          args.nbdTlsPskFile,
          args.nbdAccess,
        ].filter((f): f is string => typeof f === 'string'),
        logger,
        identityHooks: (preserve, references) => createIdentityHooks(preserve, references) as never,
        connectionLimits: limits,
        sessions,
      });
      warnPlaintextListener(logger, listen.host, running.url, tls !== undefined);
      const metrics = running.agent.metrics;
      nbd = nbdAt
        ? await startNbd(pool, nbdAt, logger, sessions, (reason) => metrics.nbdRefusals.inc({ reason }))
        : null;
      if (nbd) metrics.watchNbd(nbd);
    } catch (err) {
      // Startup failed half way (a port in use): release the pool so the process can exit.
      await (running ? running.stop() : pool.close());
      // An --nbd path that holds another file, or where another server listens, is a bad command line.
      if (err instanceof NbdError && err.code === 'INVALID_ADDRESS') throw new UsageError(err.message);
      throw err;
    }
    const agent = running;
    // A stop on request exits 0 whatever the state (e.g. a full host filesystem): errors are logged, never thrown.
    const stop = async (signal: string) => {
      logger.info('signal', { signal });
      try {
        await nbd?.close();
      } catch (err) {
        logger.error('closing NBD', { error: String(err) });
      }
      try {
        await agent.stop();
      } catch (err) {
        logger.error('stopping the agent', { error: String(err) });
      }
      process.exit(EXIT.OK);
    };
    process.once('SIGTERM', () => void stop('SIGTERM'));
    process.once('SIGINT', () => void stop('SIGINT'));
    // SIGHUP (systemctl reload) reads the token file again: a rotated token without a restart.
    process.on('SIGHUP', () => reloadToken(agent, args, logger));
    // Announced once a stop is handled: a SIGTERM sent on reading this line must not kill the agent unflushed.
    process.stdout.write(
      `${JSON.stringify({
        listening: agent.url,
        port: agent.port,
        ...(nbd ? { nbd: nbd.socketPath ? nbd.url('') : nbd.url('').replace(/\/$/, '') } : {}),
      })}\n`,
    );
  },
};

/**
 * The token file read again (SIGHUP): its token replaces the agent's, new
 * connections need it, those already in stay. Nothing to reload without a
 * token file; a file that cannot be read or holds a short token keeps the old
 * one. Logged either way (the token never: the logger scrubs it).
 */
function reloadToken(
  agent: RunningAgent,
  args: { tokenFile?: string; insecureNoAuth?: boolean },
  logger: Logger,
): void {
  if (args.insecureNoAuth || !args.tokenFile) {
    logger.warn('SIGHUP: nothing to reload (the token is read from a file only with --token-file)', {
      signal: 'SIGHUP',
    });
    return;
  }
  try {
    const token = serveToken(args.tokenFile, logger);
    if (token === null) throw new Error('the token file is empty');
    agent.replaceToken(token);
    logger.info('token reloaded', { signal: 'SIGHUP', tokenFile: args.tokenFile });
  } catch (err) {
    logger.error('token not reloaded: the agent keeps the token it had', {
      signal: 'SIGHUP',
      tokenFile: args.tokenFile,
      error: (err as Error).message,
    });
  }
}
