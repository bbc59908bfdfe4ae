// The start-up shared by bin/snapsync-agent and bin/terraform-provider-snapsync:
// runs a compiled bundle (dist/…, built by `npm run build`) with Node >= 22.
// When the Node that started the script is older, the project's own Node
// (node_modules/node, a devDependency) takes over. A bundle older than any
// source it was built from (its inputs.json) is not used: the TypeScript
// sources run instead (through tsx), so an edit is never shadowed;
// SNAPSYNC_FROM_SOURCE=1 forces the sources.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const MIN_NODE = 22;

function bundleIsFresh(bundle) {
  let built;
  try {
    built = fs.statSync(bundle).mtimeMs;
  } catch {
    return false;
  }
  let inputs;
  try {
    inputs = JSON.parse(fs.readFileSync(path.join(path.dirname(bundle), 'inputs.json'), 'utf8'));
  } catch {
    return false;
  }
  for (const input of inputs) {
    try {
      if (fs.statSync(path.join(root, input)).mtimeMs > built) return false;
    } catch {
      return false;
    }
  }
  return true;
}

const PARENT = 'SNAPSYNC_LAUNCHER_PARENT';

/**
 * A process handed over to is its launcher's child: when the launcher is killed outright (a plugin
 * host's SIGKILL reaches only the pid it started), the child notices it was orphaned and exits.
 */
function exitWithParent() {
  const parent = Number(process.env[PARENT]);
  delete process.env[PARENT];
  if (!parent) return;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(1);
  }, 500).unref();
}

/** Hands the script over to the project's Node; the child's signals and exit are ours. */
function switchNode(name, script) {
  const own = path.join(root, 'node_modules', 'node', 'bin', 'node');
  if (!fs.existsSync(own)) {
    process.stderr.write(
      `error: ${name} needs Node.js >= ${MIN_NODE} (this is ${process.version}); run npm ci in ${root}\n`,
    );
    process.exit(2);
  }
  const { spawn } = require('node:child_process');
  const child = spawn(own, [script, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, [PARENT]: String(process.pid) },
  });
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT']) {
    process.on(signal, () => child.kill(signal));
  }
  child.on('exit', (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    }
    process.exit(code ?? 1);
  });
}

/**
 * V8's code cache for the bundle (Node >= 22.1), kept in the project's own node_modules/.cache
 * (not a shared temporary directory, where another user could plant one): a start compiles
 * less. Where that directory cannot be written Node simply runs without it.
 */
function enableCompileCache() {
  try {
    require('node:module').enableCompileCache?.(path.join(root, 'node_modules', '.cache', 'node-compile'));
  } catch {
    // No cache: the same start, a little slower.
  }
}

/**
 * Runs `start(module)` on the bundle's module, or on the source entry's when the bundle is stale.
 *   name    the command (error messages)
 *   script  the bin/ file that called (re-run under the project's Node)
 *   bundle  dist/… relative to the project root; source: its TypeScript entry, relative too
 */
function launch({ name, script, bundle, source, start }) {
  if (Number(process.versions.node.split('.')[0]) < MIN_NODE) {
    switchNode(name, script);
    return;
  }
  exitWithParent();
  enableCompileCache();
  const compiled = path.join(root, bundle);
  if (!process.env.SNAPSYNC_FROM_SOURCE && bundleIsFresh(compiled)) {
    start(require(compiled));
  } else {
    require('tsx/cjs/api').register();
    start(require(path.join(root, source)));
  }
}

module.exports = { launch };
