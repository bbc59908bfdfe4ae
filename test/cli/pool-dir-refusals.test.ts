/**
 * What `serve` and the offline tools (`fsck`, `migrate`, `grow --pool`) say
 * about a directory they cannot use: one answer for one state, and the
 * directory left exactly as it was. A pool whose metadata file is gone is "no
 * pool" to all of them (none creates an empty metadata file); a pool the
 * agent's user may not read or write is a permission error naming the path
 * and that user, not "no pool" and not a bare errno number.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Pool } from '../../agent/engine';
import { mountSmallFs } from '../helpers/small-fs';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const BIN = path.resolve(__dirname, '../../bin/snapsync-agent');
/** Root bypasses permissions: as root the tools run as nobody (a unit's `User=`), otherwise as this user. */
const RUNNER = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : null;

const TOOLS: Record<string, (pool: string) => string[]> = {
  serve: (pool) => ['serve', '--pool', pool, '--listen', '127.0.0.1:0', '--insecure-no-auth'],
  fsck: (pool) => ['fsck', '--pool', pool],
  migrate: (pool) => ['migrate', '--pool', pool],
  grow: (pool) => ['grow', '--pool', pool, '--capacity', '2T'],
};

/** A tool's --json refusal ({code, message, details}), asserting it exited 1. */
function refusal(args: string[]): { code: string; message: string; details: Record<string, unknown> } {
  const r = spawnSync(process.execPath, [BIN, ...args, '--json'], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, SNAPSYNC_URL: 'ws://127.0.0.1:1' },
    ...(RUNNER ?? {}),
  });
  assert.equal(r.status, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
  // serve reports on stderr, the offline tools on stdout with --json.
  const json = r.stdout.trim() ? JSON.parse(r.stdout) : null;
  if (json) return json.error;
  const [, code, message] = /error: \[(\w+)\] (.*)/.exec(r.stderr) ?? [];
  return { code: code!, message: message!, details: {} };
}

/** Every file and directory under `dir` with its mode and contents, to show a tool changed nothing. */
function snapshotTree(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .map((e) => {
      const p = path.join(e.parentPath, e.name);
      const st = fs.statSync(p);
      return `${p} ${st.mode.toString(8)} ${e.isFile() ? fs.readFileSync(p).toString('base64') : ''}`;
    })
    .sort();
}

describe('serve and the offline tools on a directory they cannot use', function () {
  this.timeout(300_000);
  let parent: string;

  async function newPool(under = parent): Promise<string> {
    const dir = path.join(under, `pool-${fs.readdirSync(under).length}`);
    const pool = Pool.create(dir, { blockSize: 4096, capacityBytes: 1 << 24 });
    await pool.close();
    if (RUNNER)
      for (const p of [dir, ...fs.readdirSync(dir, { recursive: true }).map((f) => path.join(dir, `${f}`))])
        fs.chownSync(p, RUNNER.uid, RUNNER.gid);
    return dir;
  }

  before(() => {
    parent = tempDir();
    fs.chmodSync(parent, 0o755);
  });
  after(() => {
    for (const e of fs.readdirSync(parent)) fs.chmodSync(path.join(parent, e), 0o700);
    cleanupTempDirs();
  });

  it('a pool whose meta/data.mdb is gone: every tool says it holds no pool, and none creates a metadata file', async () => {
    const dir = await newPool();
    fs.rmSync(path.join(dir, 'meta', 'data.mdb'));
    const before = snapshotTree(dir);
    for (const [tool, args] of Object.entries(TOOLS)) {
      const error = refusal(args(dir));
      assert.equal(error.code, 'INVALID_ARGUMENT', `${tool}: ${error.message}`);
      assert.equal(
        error.message,
        `${dir} holds no pool (no metadata file ${path.join(dir, 'meta', 'data.mdb')})`,
      );
      assert.deepEqual(snapshotTree(dir), before, `${tool} changed the directory`);
    }
  });

  it('a pool directory the agent\'s user cannot enter: IO_ERROR EACCES naming the path and the uid, not "holds no pool"', async () => {
    const dir = await newPool();
    fs.chmodSync(dir, 0o000);
    for (const [tool, args] of Object.entries(TOOLS)) {
      const error = refusal(args(dir));
      assert.equal(error.code, 'IO_ERROR', `${tool}: ${error.message}`);
      assert.ok(error.message.includes(path.join(dir, 'meta', 'data.mdb')), error.message);
      assert.match(error.message, /failed: EACCES \(permission denied to uid \d+/);
      if (tool !== 'serve') assert.equal(error.details.errno, 'EACCES');
    }
    fs.chmodSync(dir, 0o700);
  });

  it('a metadata file the agent may not write: serve, migrate and grow say POOL_READ_ONLY naming the file, EACCES and the uid, not "failed: 13"', async () => {
    const dir = await newPool();
    const file = path.join(dir, 'meta', 'data.mdb');
    fs.chmodSync(file, 0o444);
    for (const tool of ['serve', 'migrate', 'grow']) {
      const error = refusal(TOOLS[tool]!(dir));
      assert.equal(error.code, 'POOL_READ_ONLY', `${tool}: ${error.message}`);
      assert.match(
        error.message,
        /^pool at .* is not writable by uid \d+ .*, the user the agent runs as \(.*data\.mdb: EACCES\): give that user the pool directory and everything in it \(chown -R\)/,
      );
      assert.ok(error.message.includes(file), error.message);
      if (tool !== 'serve') assert.deepEqual([error.details.file, error.details.errno], [file, 'EACCES']);
    }
    // Reading is allowed: fsck checks it.
    const r = spawnSync(process.execPath, [BIN, 'fsck', '--pool', dir], {
      encoding: 'utf8',
      ...(RUNNER ?? {}),
    });
    assert.equal(r.status, 0, r.stderr);
  });

  it('a pool on a read-only filesystem: serve, migrate and grow say POOL_READ_ONLY (EROFS) and how to fix it, not a bare IO_ERROR; fsck checks it', async () => {
    const small = mountSmallFs(64 * 1024 * 1024);
    try {
      const dir = await newPool(small.dir);
      small.readOnly();
      const before = snapshotTree(dir);
      for (const tool of ['serve', 'migrate', 'grow']) {
        const error = refusal(TOOLS[tool]!(dir));
        assert.equal(error.code, 'POOL_READ_ONLY', `${tool}: ${error.message}`);
        assert.equal(
          error.message,
          `pool at ${dir} is on a read-only filesystem (${path.join(dir, 'pool.lock')}: EROFS): the agent writes its lock, metadata and data files there; remount that filesystem read-write (mount -o remount,rw) or copy the pool to a writable one (fsck --pool checks it where it is)`,
        );
        if (tool !== 'serve') assert.deepEqual([error.details.path, error.details.errno], [dir, 'EROFS']);
      }
      assert.deepEqual(snapshotTree(dir), before);
      const r = spawnSync(process.execPath, [BIN, 'fsck', '--pool', dir], {
        encoding: 'utf8',
        ...(RUNNER ?? {}),
      });
      assert.equal(r.status, 0, r.stderr);
    } finally {
      small.unmount();
    }
  });
});
