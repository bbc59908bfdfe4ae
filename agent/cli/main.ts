/**
 * snapsync-agent: `init` and `serve` run a pool; every other command talks to
 * a running agent (URL and token from flags, SNAPSYNC_URL / SNAPSYNC_TOKEN, or
 * ~/.config/snapsync/cli.json). `--json` on every command; exit codes in exit-codes.ts.
 */
import yargs, { type CommandModule } from 'yargs';
import { hideBin } from 'yargs/helpers';
import packageJson from '../../package.json';
import { lmdbCorruption } from '../engine/store/lmdb-corruption';
import { commandsFor } from './command-loader';
import { EXIT } from './exit-codes';
import { isUsageError, UsageError } from './usage-error';

export async function main(argv: string[]): Promise<void> {
  const args = hideBin(argv);
  // Every command prints JSON with --json, --version too (yargs prints its text line).
  if (args.includes('--version') && args.includes('--json')) {
    process.stdout.write(`${JSON.stringify({ version: packageJson.version, node: process.version })}\n`);
    return;
  }
  try {
    refuseNegativeNumbers(args);
    await parser(args, commandsFor(args)).parseAsync();
  } catch (thrown) {
    // LMDB's word that the metadata is damaged is CORRUPT (serve opening or reading a damaged pool).
    const err = lmdbCorruption(thrown) ?? thrown;
    // Nothing escapes as an unhandled rejection: every failure is one line and a documented exit code.
    const usage = isUsageError(err);
    const raw = (err as { code?: unknown })?.code;
    // A usage error may carry its own code (TOKEN_TOO_SHORT); yargs' own ones are USAGE.
    const code = typeof raw === 'string' ? raw : usage ? 'USAGE' : null;
    const message = (err as Error)?.message ?? String(err);
    // --json: the error on stdout as every client command prints one (`run`), whatever failed.
    if (args.includes('--json'))
      process.stdout.write(`${JSON.stringify({ error: { code: code ?? 'ERROR', message } }, null, 2)}\n`);
    const tag = code !== null && code !== 'USAGE' ? `[${code}] ` : '';
    if (usage) process.stderr.write(`error: ${tag}${message}\nrun with --help for usage\n`);
    else process.stderr.write(`error: ${tag}${message}\n`);
    process.exitCode = usage ? EXIT.USAGE : EXIT.OPERATION_FAILED;
  }
}

/** A negative number or size, as parseSize would read it without the sign (`-5G`, `-1`, `-64KiB`). */
const NEGATIVE_SIZE = /^-\d+(\.\d+)?\s*([KMGTP](i?B)?)?$/i;
const NEGATIVE_NUMBER = /^-\d+(\.\d+)?$/;
/** Options whose value is free text, where `-5` may be meant. */
const FREE_TEXT_OPTIONS = new Set(['--text', '--label', '--member', '--map']);

/**
 * No option of this CLI is a digit, so `-5G` is a negative size or offset; yargs would read it as
 * the flags -5 and -G and report something else ("Unknown arguments: 5, G", or an empty size).
 */
function refuseNegativeNumbers(args: string[]): void {
  const end = args.indexOf('--');
  const negative = (end < 0 ? args : args.slice(0, end)).find(
    (a, i) =>
      NEGATIVE_SIZE.test(a) &&
      !FREE_TEXT_OPTIONS.has(args[i - 1] ?? '') &&
      // yargs takes a plain negative number as an option's value: the option's own check names it.
      !(
        NEGATIVE_NUMBER.test(a) &&
        /^--?[a-z]/i.test(args[i - 1] ?? '') &&
        !(args[i - 1] ?? '').includes('=')
      ),
  );
  if (negative !== undefined)
    throw new UsageError(`"${negative}": sizes, offsets and counts are never negative`);
}

function parser(args: string[], commands: CommandModule[]) {
  const cli = yargs(args);
  return (
    cli
      .scriptName('snapsync-agent')
      // The Node that runs the agent matters to operators (the launcher may have switched to the project's own).
      .version(`${packageJson.version} (node ${process.version})`)
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
      .command(commands as never)
      .demandCommand(1, 'name a command (see --help)')
      .strict()
      // An option given twice that takes one value: yargs makes an array of it, which no handler expects.
      .check((argv) => {
        const repeatable = new Set(
          (cli as unknown as { getOptions(): { array: string[] } }).getOptions().array,
        );
        // yargs keeps each dashed option under its camelCase name too: the dashed one is looked at.
        const twice = Object.keys(argv).find(
          (key) => key !== '_' && !/[A-Z]/.test(key) && Array.isArray(argv[key]) && !repeatable.has(key),
        );
        if (twice !== undefined)
          throw new UsageError(`--${twice} is given more than once (it takes one value)`);
        return true;
      }, true)
      .example('$0 init --pool /var/lib/snapsync --token-file /etc/snapsync/token', 'create a pool')
      .example('$0 serve --pool /var/lib/snapsync --token-file /etc/snapsync/token', 'run the agent')
      .example('$0 sync staging-web prod-web@nightly', 'refresh staging from a snapshot')
      .epilogue('Exit codes: 0 ok, 1 operation failed, 2 usage, 3 connection/auth, 4 fsck found problems.')
      .fail((msg, err) => {
        throw err ?? new UsageError(msg);
      })
      .help()
  );
}
