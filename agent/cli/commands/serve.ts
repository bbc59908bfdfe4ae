import * as fs from 'node:fs';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { Pool } from '../../engine';
import { createIdentityHooks } from '../../identity';
import { parseNbdAddress, startNbdServer } from '../../nbd';
import { Logger } from '../../server/logger';
import { startAgentServer } from '../../server/server';
import { EXIT } from '../exit-codes';

interface ServeArgs {
  pool: string;
  listen: string;
  tokenFile?: string;
  insecureNoAuth?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  allowDir: string[];
  maxMessageBytes: number;
  maxInFlight: number;
  nbd?: string;
  json?: boolean;
}

function hostPort(text: string): { host: string; port: number } {
  const at = text.lastIndexOf(':');
  const host = text.slice(0, at).replace(/^\[|\]$/g, '') || '127.0.0.1';
  const port = Number(text.slice(at + 1));
  if (at < 0 || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`"${text}" is not HOST:PORT`);
  return { host, port };
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
      .option('tls-cert', { type: 'string', describe: 'PEM certificate: serve wss://' })
      .option('tls-key', { type: 'string', describe: 'PEM private key for --tls-cert' })
      .option('allow-dir', {
        type: 'string',
        array: true,
        default: [] as string[],
        describe: 'Directory import/export may use (repeatable)',
      })
      .option('max-message-bytes', { type: 'number', default: 33 * 1024 * 1024 })
      .option('max-in-flight', { type: 'number', default: 64, describe: 'Requests in flight per connection' })
      .option('nbd', {
        type: 'string',
        describe: 'Also export vdisks over NBD on HOST:PORT (e.g. 127.0.0.1:10809)',
      })
      .example(
        '$0 serve --pool /var/lib/snapsync --token-file /etc/snapsync/token',
        'serve on 127.0.0.1:7890',
      )
      .example(
        '$0 serve --pool ./pool --listen 127.0.0.1:0 --insecure-no-auth',
        'a throwaway local agent',
      ) as unknown as Argv<ServeArgs>,
  handler: async (args: ArgumentsCamelCase<ServeArgs>) => {
    const logger = new Logger();
    const tokenText = args.tokenFile
      ? fs.readFileSync(args.tokenFile, 'utf8').trim()
      : process.env.SNAPSYNC_TOKEN;
    const token = args.insecureNoAuth ? null : tokenText || null;
    if (token === null && !args.insecureNoAuth) {
      process.stderr.write(
        'error: a token is required: --token-file FILE or $SNAPSYNC_TOKEN (or --insecure-no-auth on loopback)\n',
      );
      process.exitCode = EXIT.USAGE;
      return;
    }
    const { host, port } = hostPort(args.listen);
    const pool = Pool.open(args.pool);
    pool.onBackgroundError = (err) => logger.error('background work failed', { error: String(err) });
    const running = await startAgentServer({
      pool,
      host,
      port,
      token,
      insecureNoAuth: args.insecureNoAuth,
      tls:
        args.tlsCert && args.tlsKey
          ? { cert: fs.readFileSync(args.tlsCert), key: fs.readFileSync(args.tlsKey) }
          : undefined,
      allowDirs: args.allowDir,
      maxMessageBytes: args.maxMessageBytes,
      maxInFlight: args.maxInFlight,
      logger,
      identityHooks: (preserve) => createIdentityHooks(preserve) as never,
    });
    const nbd = args.nbd ? await startNbdServer({ pool, ...parseNbdAddress(args.nbd) }) : null;
    process.stdout.write(
      `${JSON.stringify({ listening: running.url, port: running.port, ...(nbd ? { nbd: args.nbd } : {}) })}\n`,
    );
    const stop = async (signal: string) => {
      logger.info('signal', { signal });
      await nbd?.close();
      await running.stop();
      process.exit(EXIT.OK);
    };
    process.once('SIGTERM', () => void stop('SIGTERM'));
    process.once('SIGINT', () => void stop('SIGINT'));
  },
};
