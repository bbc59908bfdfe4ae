/**
 * Loads only the command the user named, so a client command never pays for
 * the engine, the server and the identity profiles it does not run, and
 * `--version` loads no command at all. `--help` and anything unrecognised load
 * every command (yargs then lists them, or names the mistake).
 */
import type { CommandModule } from 'yargs';

// require() inside a function: esbuild's bundle then runs a module's top level only when it is loaded.
type Loader = () => Record<string, unknown>;

const FILES: Record<string, Loader> = {
  containers: () => require('./commands/containers'),
  grow: () => require('./commands/grow'),
  init: () => require('./commands/init'),
  io: () => require('./commands/io'),
  labels: () => require('./commands/labels'),
  maintenance: () => require('./commands/maintenance'),
  members: () => require('./commands/members'),
  migrate: () => require('./commands/migrate'),
  serve: () => require('./commands/serve'),
  snapshots: () => require('./commands/snapshots'),
  sessions: () => require('./commands/sessions'),
  sync: () => require('./commands/sync'),
  unfence: () => require('./commands/unfence'),
};

/** The file that defines each command word, in the order `--help` lists them. */
const FILE_OF: Record<string, keyof typeof FILES> = {
  init: 'init',
  serve: 'serve',
  ls: 'containers',
  describe: 'containers',
  create: 'containers',
  rm: 'containers',
  resize: 'containers',
  usage: 'containers',
  label: 'labels',
  'add-member': 'members',
  'remove-member': 'members',
  sessions: 'sessions',
  unfence: 'unfence',
  snapshot: 'snapshots',
  snapshots: 'snapshots',
  tree: 'snapshots',
  clone: 'snapshots',
  revert: 'snapshots',
  sync: 'sync',
  flatten: 'maintenance',
  fsck: 'maintenance',
  grow: 'grow',
  migrate: 'migrate',
  read: 'io',
  write: 'io',
  import: 'io',
  export: 'io',
  info: 'io',
};
const ORDER = Object.keys(FILE_OF);

/** Command words this loader can find without loading every command. */
export const knownCommandWords = (): string[] => [...ORDER];
export const wordOf = (command: CommandModule) => String(command.command).split(' ')[0] as string;
const rank = (command: CommandModule) => {
  const at = ORDER.indexOf(wordOf(command));
  return at === -1 ? ORDER.length : at;
};

/** Global options that take a value (main.ts declares them). */
const GLOBAL_WITH_VALUE = new Set([
  '--url',
  '--token',
  '--token-file',
  '--fingerprint',
  '--ca-file',
  '--config',
]);
const GLOBAL_FLAGS = new Set(['--json', '--no-json', '--help', '-h', '--version']);

/** The command word, or null when it cannot be told without parsing (then every command loads). */
export function commandWord(args: string[]): string | null {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--') return null;
    if (!arg.startsWith('-')) return arg;
    if (arg.includes('=') && GLOBAL_WITH_VALUE.has(arg.slice(0, arg.indexOf('=')))) continue;
    if (GLOBAL_WITH_VALUE.has(arg)) i++;
    else if (!GLOBAL_FLAGS.has(arg)) return null;
  }
  return null;
}

const isCommand = (value: unknown): value is CommandModule =>
  typeof value === 'object' && value !== null && 'command' in value && 'handler' in value;

function load(file: keyof typeof FILES): CommandModule[] {
  return Object.values(FILES[file]()).filter(isCommand);
}

export function commandsFor(args: string[]): CommandModule[] {
  const word = commandWord(args);
  const file = word === null ? undefined : FILE_OF[word];
  if (file) return load(file);
  if (word === null && args.includes('--version') && !args.includes('--help')) return [];
  const all: CommandModule[] = [];
  for (const name of Object.keys(FILES) as (keyof typeof FILES)[]) all.push(...load(name));
  return all.sort((a, b) => rank(a) - rank(b));
}
