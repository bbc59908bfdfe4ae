/**
 * bin/snapsync-agent: runs the compiled bundle when it is fresh, the sources
 * when one is newer (an edit is never shadowed by an old build), and always
 * on Node >= 22, switching to the project's own Node when started by an older one
 * (bin/launcher.js, shared with bin/terraform-provider-snapsync).
 */
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { commandsFor, commandWord, knownCommandWords, wordOf } from '../../agent/cli/command-loader';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const REPO = path.resolve(__dirname, '../..');
const LAUNCHER = path.join(REPO, 'bin', 'snapsync-agent');
const PROJECT_NODE = path.join(REPO, 'node_modules', 'node', 'bin', 'node');

/** A project tree with the real launcher, a stub bundle and stub sources that say which one ran. */
function stubProject(): string {
  const root = tempDir('snapsync-launcher-');
  fs.mkdirSync(path.join(root, 'bin'));
  fs.copyFileSync(LAUNCHER, path.join(root, 'bin', 'snapsync-agent'));
  fs.copyFileSync(path.join(REPO, 'bin', 'launcher.js'), path.join(root, 'bin', 'launcher.js'));
  fs.mkdirSync(path.join(root, 'agent', 'cli'), { recursive: true });
  fs.writeFileSync(
    path.join(root, 'agent', 'cli', 'main.ts'),
    "export function main(argv: string[]): void { console.log('source', process.version, argv.slice(2).join(' ')); }\n",
  );
  fs.mkdirSync(path.join(root, 'dist', 'agent'), { recursive: true });
  fs.writeFileSync(
    path.join(root, 'dist', 'agent', 'cli.js'),
    "exports.main = (argv) => console.log('bundle', process.version, argv.slice(2).join(' '));\n",
  );
  fs.writeFileSync(path.join(root, 'dist', 'agent', 'inputs.json'), JSON.stringify(['agent/cli/main.ts']));
  // Sources older than the bundle: a fresh build.
  const past = new Date(Date.now() - 60_000);
  fs.utimesSync(path.join(root, 'agent', 'cli', 'main.ts'), past, past);
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(root, 'node_modules'));
  return root;
}

function run(root: string, node: string, env: NodeJS.ProcessEnv = {}): string {
  const r = spawnSync(node, [path.join(root, 'bin', 'snapsync-agent'), 'ls', '--json'], {
    encoding: 'utf8',
    env: { ...process.env, SNAPSYNC_FROM_SOURCE: '', ...env },
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

const major = (line: string) => Number(/ v(\d+)\./.exec(line)?.[1]);

describe('bin/snapsync-agent launcher', () => {
  after(cleanupTempDirs);

  it('runs the bundle when it is newer than every source it was built from', () => {
    const root = stubProject();
    assert.match(run(root, PROJECT_NODE), /^bundle v\d+\.\S+ ls --json$/);
  });

  it('runs the sources when one of them changed after the build, or when asked to', () => {
    const root = stubProject();
    assert.match(run(root, PROJECT_NODE, { SNAPSYNC_FROM_SOURCE: '1' }), /^source /);
    fs.utimesSync(path.join(root, 'agent', 'cli', 'main.ts'), new Date(), new Date(Date.now() + 5_000));
    assert.match(run(root, PROJECT_NODE), /^source /);
  });

  it('runs on Node >= 22 even when started by an older Node', () => {
    const systemNode = ['/usr/bin/node', '/usr/local/bin/node'].find((candidate) => fs.existsSync(candidate));
    const version = systemNode ? spawnSync(systemNode, ['--version'], { encoding: 'utf8' }).stdout : '';
    if (!systemNode || major(` ${version.trim()}.`) >= 22) {
      // No older Node here: start the launcher with the project's Node, which must simply run.
      assert.ok(major(run(stubProject(), PROJECT_NODE)) >= 22);
      return;
    }
    const line = run(stubProject(), systemNode);
    assert.match(line, /^bundle /);
    assert.ok(major(line) >= 22, `${line} (started by ${version.trim()})`);
  });

  it('started as a command (its #! line), runs on the project Node in one process, also through a symlink', () => {
    const root = stubProject();
    fs.writeFileSync(
      path.join(root, 'dist', 'agent', 'cli.js'),
      "exports.main = () => console.log('bundle', process.version, process.ppid);\n",
    );
    const link = path.join(tempDir('snapsync-launcher-link-'), 'snapsync-agent');
    fs.symlinkSync(path.join(root, 'bin', 'snapsync-agent'), link);
    for (const command of [path.join(root, 'bin', 'snapsync-agent'), link]) {
      const r = spawnSync(command, [], {
        encoding: 'utf8',
        env: { ...process.env, SNAPSYNC_FROM_SOURCE: '' },
      });
      assert.equal(r.status, 0, r.stderr);
      const [what, version, parent] = r.stdout.trim().split(' ');
      assert.equal(what, 'bundle');
      assert.equal(version, spawnSync(PROJECT_NODE, ['--version'], { encoding: 'utf8' }).stdout.trim());
      // No hand-over: the Node that ran the bundle is the process this test started.
      assert.equal(Number(parent), process.pid, command);
    }
  });

  it('passes the exit code of the agent through a Node switch', () => {
    const root = stubProject();
    fs.writeFileSync(
      path.join(root, 'dist', 'agent', 'cli.js'),
      'exports.main = () => { process.exitCode = 4; };\n',
    );
    const systemNode = fs.existsSync('/usr/bin/node') ? '/usr/bin/node' : PROJECT_NODE;
    const r = spawnSync(systemNode, [path.join(root, 'bin', 'snapsync-agent')], { encoding: 'utf8' });
    assert.equal(r.status, 4, r.stderr);
  });

  it('a process handed over to exits when its launcher is killed outright (no orphan)', async () => {
    const systemNode = ['/usr/bin/node', '/usr/local/bin/node'].find((candidate) => fs.existsSync(candidate));
    const version = systemNode ? spawnSync(systemNode, ['--version'], { encoding: 'utf8' }).stdout : '';
    if (!systemNode || major(` ${version.trim()}.`) >= 22) return; // no hand-over here: nothing can be orphaned
    const root = stubProject();
    fs.writeFileSync(
      path.join(root, 'dist', 'agent', 'cli.js'),
      'exports.main = () => { console.log(process.pid); setInterval(() => {}, 1000); };\n',
    );
    const launcher = spawn(systemNode, [path.join(root, 'bin', 'snapsync-agent')], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const child = Number(await new Promise<string>((resolve) => launcher.stdout!.once('data', resolve)));
    assert.notEqual(child, launcher.pid);
    launcher.kill('SIGKILL'); // as a plugin host's force-kill: the child gets no signal
    const alive = () => {
      try {
        process.kill(child, 0);
        return true;
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 50 && alive(); i++) await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(alive(), false, 'the handed-over process outlived its launcher');
  });

  it('loads only the named command: the word is found past global options', () => {
    assert.equal(commandWord(['sync', 'a', 'b@s']), 'sync');
    assert.equal(commandWord(['--url', 'ws://h:1', '--json', 'sync', 'a']), 'sync');
    assert.equal(commandWord(['--url=ws://h:1', 'ls']), 'ls');
    assert.equal(commandWord(['--pool', '/p', 'serve']), null);
    assert.equal(commandWord(['--version']), null);
  });

  it('knows the file of every command, so naming one never loads the others', () => {
    const words = commandsFor(['--help']).map(wordOf);
    assert.deepEqual([...words].sort(), [...knownCommandWords()].sort());
    for (const word of words) assert.deepEqual(commandsFor([word]).map(wordOf).includes(word), true, word);
  });

  it('a client command and --version never load the engine (LMDB) or the native bindings', () => {
    // A preload that lists every module the process asked for, written out at exit.
    const dir = tempDir('snapsync-loads-');
    const preload = path.join(dir, 'record-loads.js');
    fs.writeFileSync(
      preload,
      `const M = require('node:module'); const seen = new Set(); const load = M._load;
M._load = function (request, ...rest) { seen.add(request); return load.call(this, request, ...rest); };
process.on('exit', () => require('node:fs').writeFileSync(process.env.LOADS_OUT, [...seen].join('\\n')));`,
    );
    for (const args of [['--version'], ['ls', '--url', 'ws://127.0.0.1:1', '--token', 'x'.repeat(32)]]) {
      const out = path.join(dir, `${args[0]}.txt`);
      spawnSync(process.execPath, ['--require', preload, LAUNCHER, ...args], {
        encoding: 'utf8',
        env: { ...process.env, LOADS_OUT: out },
      });
      const loaded = fs.readFileSync(out, 'utf8').split('\n');
      for (const heavy of ['lmdb', 'koffi'])
        assert.equal(loaded.includes(heavy), false, `${args[0]} loaded ${heavy}`);
    }
  });

  it('the real CLI answers --version with the Node that runs it, and --help lists every command', () => {
    const version = spawnSync(process.execPath, [LAUNCHER, '--version'], { encoding: 'utf8' });
    assert.equal(version.status, 0, version.stderr);
    assert.match(version.stdout.trim(), /^\d+\.\d+\.\d+ \(node v\d+\.\d+\.\d+\)$/);
    const json = spawnSync(process.execPath, [LAUNCHER, '--version', '--json'], { encoding: 'utf8' });
    assert.equal(json.status, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as { version: string; node: string };
    assert.equal(`${parsed.version} (node ${parsed.node})`, version.stdout.trim());
    const help = spawnSync(process.execPath, [LAUNCHER, '--help'], { encoding: 'utf8' });
    assert.equal(help.status, 0, help.stderr);
    for (const word of ['init', 'serve', 'ls', 'sync', 'fsck', 'import', 'export', 'tree', 'flatten']) {
      assert.match(help.stdout, new RegExp(`snapsync-agent ${word}\\b`), word);
    }
  });
});
