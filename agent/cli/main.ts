/**
 * snapsync-agent: `init` and `serve` run a pool; every other command talks to
 * a running agent (URL and token from flags, SNAPSYNC_URL / SNAPSYNC_TOKEN, or
 * ~/.config/snapsync/cli.json). `--json` on every command; exit codes in exit-codes.ts.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { create, describeCmd, ls, resize, rm, usage } from './commands/containers';
import { init } from './commands/init';
import { exportCmd, importCmd, info, read, write } from './commands/io';
import { flatten, fsck } from './commands/maintenance';
import { serve } from './commands/serve';
import { sessions } from './commands/sessions';
import { clone, revert, snapshot, snapshots, tree } from './commands/snapshots';
import { sync } from './commands/sync';
import { EXIT } from './exit-codes';
import { isUsageError, UsageError } from './usage-error';

export async function main(argv: string[]): Promise<void> {
  try {
    await parser(argv).parseAsync();
  } catch (err) {
    // Nothing escapes as an unhandled rejection: every failure is one line and a documented exit code.
    if (isUsageError(err)) {
      process.stderr.write(`error: ${err.message}\nrun with --help for usage\n`);
      process.exitCode = EXIT.USAGE;
    } else {
      const code = (err as { code?: unknown })?.code;
      process.stderr.write(
        `error: ${typeof code === 'string' ? `[${code}] ` : ''}${(err as Error)?.message ?? String(err)}\n`,
      );
      process.exitCode = EXIT.OPERATION_FAILED;
    }
  }
}

function parser(argv: string[]) {
  return yargs(hideBin(argv))
    .scriptName('snapsync-agent')
    .usage('$0 <command> [options]')
    .option('url', {
      type: 'string',
      global: true,
      describe: 'agent URL (default $SNAPSYNC_URL or ws://127.0.0.1:7890)',
    })
    .option('token', {
      type: 'string',
      global: true,
      describe: 'bearer token (prefer $SNAPSYNC_TOKEN or --token-file)',
    })
    .option('token-file', { type: 'string', global: true, describe: 'file holding the bearer token' })
    .option('fingerprint', {
      type: 'string',
      global: true,
      describe: "pin the agent's certificate (SHA-256)",
    })
    .option('ca-file', { type: 'string', global: true, describe: "CA bundle for the agent's certificate" })
    .option('config', {
      type: 'string',
      global: true,
      describe: 'CLI config file (default ~/.config/snapsync/cli.json)',
    })
    .option('json', { type: 'boolean', global: true, describe: 'print JSON' })
    .command([
      init,
      serve,
      ls,
      describeCmd,
      create,
      rm,
      resize,
      usage,
      sessions,
      snapshot,
      snapshots,
      tree,
      clone,
      revert,
      sync,
      flatten,
      fsck,
      read,
      write,
      importCmd,
      exportCmd,
      info,
    ] as never)
    .demandCommand(1, 'name a command (see --help)')
    .strict()
    .example('$0 init --pool /var/lib/snapsync --token-file /etc/snapsync/token', 'create a pool')
    .example('$0 serve --pool /var/lib/snapsync --token-file /etc/snapsync/token', 'run the agent')
    .example('$0 sync staging-web prod-web@nightly', 'refresh staging from a snapshot')
    .epilogue('Exit codes: 0 ok, 1 operation failed, 2 usage, 3 connection/auth, 4 fsck found problems.')
    .fail((msg, err) => {
      throw err ?? new UsageError(msg);
    })
    .help();
}
