/**
 * What every client command shares: where the agent is (flags, then env, then
 * ~/.config/snapsync/cli.json), how to print (--json or tables), and how
 * errors become exit codes.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AgentClient, AgentError } from '../client/client';
import { EXIT } from './exit-codes';
import { UsageError } from './usage-error';

export interface GlobalArgs {
  url?: string;
  token?: string;
  tokenFile?: string;
  fingerprint?: string;
  caFile?: string;
  config?: string;
  json?: boolean;
}

interface ConfigFile {
  url?: string;
  tokenFile?: string;
  fingerprint?: string;
  caFile?: string;
}

export const CONNECTION_CODES = new Set([
  'UNAUTHORIZED',
  'AUTH_BACKOFF',
  'CONNECTION_REFUSED',
  'CONNECTION_FAILED',
  'CONNECTION_LOST',
  'TLS_PIN_MISMATCH',
  'UNSUPPORTED_PROTOCOL',
]);

function readConfig(file: string | undefined): ConfigFile {
  const where = file ?? path.join(os.homedir(), '.config', 'snapsync', 'cli.json');
  if (file === undefined && !fs.existsSync(where)) return {};
  const text = readSetting(where, file === undefined ? 'the CLI config file' : '--config');
  try {
    return JSON.parse(text) as ConfigFile;
  } catch (err) {
    throw new UsageError(`${where} (CLI config) is not JSON: ${(err as Error).message}`);
  }
}

/** A file the command line, environment or config names (a token, a CA): unreadable is a usage error (exit 2). */
function readSetting(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new UsageError(`${what} ${file} cannot be read (${code})`);
  }
}

/** The agent's URL, checked: ws:// or wss:// with a host (a typo is a usage error, not a failed connection). */
function agentUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`not an agent URL: "${url}" (e.g. ws://127.0.0.1:7890 or wss://agent.example:7890)`);
  }
  if ((parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') || parsed.hostname === '')
    throw new UsageError(`not an agent URL: "${url}" (ws:// or wss:// and a host, e.g. ws://127.0.0.1:7890)`);
  return url;
}

export async function connect(args: GlobalArgs): Promise<AgentClient> {
  const config = readConfig(args.config);
  const url = agentUrl(args.url ?? process.env.SNAPSYNC_URL ?? config.url ?? 'ws://127.0.0.1:7890');
  // Flags first, then the environment, then the config file: a --token-file given is the one used.
  const fromFile = (file: string | undefined) => (file ? readSetting(file, 'token file').trim() : undefined);
  const token =
    args.token ??
    fromFile(args.tokenFile) ??
    process.env.SNAPSYNC_TOKEN ??
    fromFile(process.env.SNAPSYNC_TOKEN_FILE ?? config.tokenFile);
  const caFile = args.caFile ?? config.caFile;
  return AgentClient.connect(url, {
    token,
    fingerprint: args.fingerprint ?? config.fingerprint,
    ca: caFile ? Buffer.from(readSetting(caFile, 'CA file')) : undefined,
    clientName: 'snapsync-agent-cli/0.1',
  });
}

/** Runs a client command: connect, act, print; maps failures to exit codes. */
export async function run(
  args: GlobalArgs,
  act: (client: AgentClient) => Promise<unknown>,
  human: (result: never) => string,
): Promise<void> {
  let client: AgentClient | null = null;
  try {
    client = await connect(args);
    const result = await act(client);
    process.stdout.write(args.json ? `${JSON.stringify(result, null, 2)}\n` : `${human(result as never)}\n`);
  } catch (err) {
    if (err instanceof UsageError) throw err; // main prints it and exits 2
    const e = err instanceof AgentError ? err : new AgentError('CLIENT_ERROR', (err as Error).message);
    if (args.json)
      process.stdout.write(
        `${JSON.stringify({ error: { code: e.code, message: e.message, details: e.details } }, null, 2)}\n`,
      );
    else process.stderr.write(`error: [${e.code}] ${printable(e.message)}\n`);
    process.exitCode = CONNECTION_CODES.has(e.code) ? EXIT.CONNECTION : EXIT.OPERATION_FAILED;
  } finally {
    await client?.close();
  }
}

const ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * A cell's text with control characters escaped (`\n`, `\x1b`): a value read from a config (a decoded
 * `|0A`, a hostile name) must neither break the table's lines nor send escape sequences to the terminal.
 */
export function printable(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
  return text.replace(/[\x00-\x1f\x7f]/g, (c) => {
    const named = ESCAPES[c];
    return named ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
}

/** A plain text table. */
export function table(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => printable(String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export const bytes = (n: number): string => {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
};

/** Parses sizes like 20G, 512M, 4096, 1.5T (binary units). */
export function parseSize(text: string | number): number {
  if (typeof text === 'number') return text;
  const match = /^(\d+(?:\.\d+)?)\s*([KMGTP]?)(i?B)?$/i.exec(text.trim());
  if (!match) throw new UsageError(`not a size: "${text}" (e.g. 4096, 512M, 20G)`);
  const power = ' KMGTP'.indexOf((match[2] || ' ').toUpperCase());
  return Math.round(Number(match[1]) * 1024 ** power);
}
