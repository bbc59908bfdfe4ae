/**
 * `snapsync-agent init` as an operator runs it: it takes over no file that
 * exists, no data file or device another pool uses, and a failed init
 * leaves nothing behind (what it created goes again; what was there stays).
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AgentClient } from '../../agent/client/client';
import { killAgentsTestsLeave, startAgentProcess } from '../helpers/agent-process';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const BIN = path.resolve(__dirname, '../../bin/snapsync-agent');

/** `init ARGS --json`, optionally under a shell prelude (ulimit); the exit code and the JSON it printed. */
function init(args: string[], prelude = '') {
  const command = [process.execPath, BIN, 'init', ...args, '--json'];
  const r = prelude
    ? spawnSync('sh', ['-c', `${prelude}; exec "$@"`, 'sh', ...command], { encoding: 'utf8' })
    : spawnSync(command[0]!, command.slice(1), { encoding: 'utf8' });
  let json: { error?: { code: string; message: string; details: Record<string, unknown> } } & Record<
    string,
    unknown
  > = {};
  try {
    json = JSON.parse(r.stdout);
  } catch {
    /* asserted by the caller through status */
  }
  return { status: r.status, json, out: `${r.stdout}${r.stderr}` };
}

function refusedWith(r: ReturnType<typeof init>, code: string, reason?: string) {
  assert.equal(r.status, 1, r.out);
  assert.equal(r.json.error?.code, code, r.out);
  if (reason !== undefined) assert.equal(r.json.error?.details.reason, reason, r.out);
}

/** Every path under `dir`, relative, sorted: what a failed init must leave as it was. */
function tree(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).sort();
}

describe('snapsync-agent init', function () {
  this.timeout(120_000);
  killAgentsTestsLeave();
  after(cleanupTempDirs);

  it('refuses a directory that is not empty, leaving its files as they were; a file for --pool too', () => {
    const root = tempDir();
    const dir = path.join(root, 'dir');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'data'), 'important\n');
    const r = init(['--pool', dir, '--capacity', '1G']);
    refusedWith(r, 'INVALID_ARGUMENT', 'not-empty');
    assert.deepEqual(r.json.error?.details.entries, ['data']);
    assert.equal(fs.readFileSync(path.join(dir, 'data'), 'utf8'), 'important\n');
    assert.deepEqual(tree(dir), ['data'], 'nothing created');
    const file = path.join(root, 'file');
    fs.writeFileSync(file, 'x');
    refusedWith(init(['--pool', file]), 'INVALID_ARGUMENT', 'not-a-directory');
    // A filesystem mounted for the pool has a lost+found: that is all an "empty" directory may hold.
    const mount = path.join(root, 'mount');
    fs.mkdirSync(path.join(mount, 'lost+found'), { recursive: true });
    assert.equal(init(['--pool', mount, '--capacity', '1G']).status, 0);
    refusedWith(init(['--pool', mount]), 'INVALID_ARGUMENT', 'holds-pool');
  });

  it('creates missing directories for the token file (0700), and a failed init leaves no pool, token or directory', () => {
    const root = tempDir();
    const ok = init([
      '--pool',
      path.join(root, 'a', 'pool'),
      '--token-file',
      path.join(root, 'a', 'etc', 'snapsync', 'token'),
      '--capacity',
      '1G',
    ]);
    assert.equal(ok.status, 0, ok.out);
    assert.equal(ok.json.tokenCreated, true);
    for (const [p, mode] of [
      ['a/etc', 0o700],
      ['a/etc/snapsync', 0o700],
      ['a/etc/snapsync/token', 0o600],
    ] as const)
      assert.equal(fs.statSync(path.join(root, p)).mode & 0o777, mode, p);
    const bad = path.join(root, 'b');
    for (const [args, reason] of [
      [['--block-size', '3K'], undefined],
      [['--data-files', '99'], undefined],
      [['--data', path.join(root, 'missing.img')], 'missing'],
    ] as const) {
      const r = init([
        '--pool',
        path.join(bad, 'pool'),
        '--token-file',
        path.join(bad, 'etc', 'token'),
        ...args,
      ]);
      refusedWith(r, 'INVALID_ARGUMENT', reason);
      assert.equal(fs.existsSync(bad), false, `${args.join(' ')}: left ${fs.existsSync(bad) && tree(bad)}`);
    }
  });

  it('removes what it created when it fails after creating the pool directory, and nothing that was there', () => {
    const root = tempDir();
    const existing = path.join(root, 'mount');
    fs.mkdirSync(path.join(existing, 'lost+found'), { recursive: true });
    // A file size limit makes the metadata reserve's write fail (EFBIG) after the directory, lock and data files exist.
    const limited = "trap '' XFSZ; ulimit -f 512";
    for (const pool of [path.join(root, 'new', 'pool'), existing]) {
      const r = init(
        ['--pool', pool, '--token-file', path.join(root, 'etc', 'token'), '--capacity', '1G'],
        limited,
      );
      assert.equal(r.status, 1, r.out);
      assert.deepEqual(tree(root), ['mount', 'mount/lost+found'], pool);
    }
  });

  it('refuses a data file another running pool uses (POOL_LOCKED), a file of a pool directory, and one holding data unless --overwrite-data', async () => {
    const root = tempDir();
    const image = path.join(root, 'disk.img');
    fs.writeFileSync(image, Buffer.alloc(0));
    fs.truncateSync(image, 64 << 20);
    const first = path.join(root, 'p5');
    assert.equal(init(['--pool', first, '--data', image, '--block-size', '4K']).status, 0);
    const agent = await startAgentProcess({ poolDir: first });
    const client = await AgentClient.connect(agent.url, { token: agent.token });
    const other = path.join(root, 'p7');
    try {
      await client.call('createContainer', { name: 'v', type: 'vdisk', size: 1 << 20 });
      await client.write('v', 0, Buffer.alloc(4096, 5));
      await client.call('flush', {});
      // The claim is checked first: --overwrite-data would not take it either.
      const inUse = init(['--pool', other, '--data', image]);
      refusedWith(inUse, 'POOL_LOCKED');
      assert.equal(inUse.json.error?.details.dataInUse, true);
      assert.equal(fs.existsSync(other), false, 'nothing created');
      // A default pool's own data file, while its agent runs.
      const striped = await startAgentProcess();
      try {
        refusedWith(init(['--pool', other, '--data', path.join(striped.poolDir, 'data')]), 'POOL_LOCKED');
      } finally {
        await striped.stop();
      }
      refusedWith(
        init(['--pool', other, '--data', path.join(striped.poolDir, 'data.3')]),
        'INVALID_ARGUMENT',
        'in-pool',
      );
    } finally {
      await client.close();
      await agent.stop();
    }
    // Stopped, it is still the first pool's (marked on the file), whatever it holds.
    refusedWith(init(['--pool', other, '--data', image]), 'INVALID_ARGUMENT', 'other-pool');
    assert.equal(fs.existsSync(other), false);
    // Taken on purpose while the first pool is stopped: the agents then cannot both serve it.
    assert.equal(init(['--pool', other, '--data', image, '--overwrite-data']).status, 0);
    const agent2 = await startAgentProcess({ poolDir: other });
    try {
      await assert.rejects(
        startAgentProcess({ poolDir: first }),
        /POOL_LOCKED\] data file \S+disk\.img is in use/,
      );
    } finally {
      await agent2.stop();
    }
  });

  it("refuses a stopped pool's data file even before it holds data; one given away with --overwrite-data stops the old pool opening", async () => {
    const root = tempDir();
    const shared = path.join(root, 'shared.img');
    fs.writeFileSync(shared, '');
    fs.truncateSync(shared, 64 << 20);
    const [a, b] = [path.join(root, 'a'), path.join(root, 'b')];
    assert.equal(init(['--pool', a, '--data', shared, '--block-size', '4K']).status, 0);
    refusedWith(
      init(['--pool', b, '--data', shared, '--block-size', '4K']),
      'INVALID_ARGUMENT',
      'other-pool',
    );
    assert.equal(fs.existsSync(b), false);
    assert.equal(init(['--pool', b, '--data', shared, '--block-size', '4K', '--overwrite-data']).status, 0);
    await assert.rejects(
      startAgentProcess({ poolDir: a }),
      /CORRUPT\] data file \S+shared\.img belongs to pool/,
    );
    const agentB = await startAgentProcess({ poolDir: b });
    assert.equal(await agentB.stop(), 0);
    // Given away through a loop device over it: the mark moves to the file behind the device.
    const attach = spawnSync('losetup', ['-f', '--show', shared], { encoding: 'utf8' });
    assert.equal(attach.status, 0, attach.stderr);
    const loop = attach.stdout.trim();
    try {
      const c = path.join(root, 'c');
      assert.equal(init(['--pool', c, '--data', loop, '--block-size', '4K', '--overwrite-data']).status, 0);
      await assert.rejects(
        startAgentProcess({ poolDir: b }),
        /CORRUPT\] data file \S+shared\.img belongs to pool/,
      );
    } finally {
      spawnSync('losetup', ['-d', loop]);
    }
  });

  it('claims a raw data device exclusively (O_EXCL): no second pool through any node of it', async () => {
    const root = tempDir();
    const backing = path.join(root, 'backing.img');
    fs.writeFileSync(backing, Buffer.alloc(0));
    fs.truncateSync(backing, 16 << 20);
    const attach = spawnSync('losetup', ['-f', '--show', backing], { encoding: 'utf8' });
    assert.equal(attach.status, 0, `losetup: ${attach.stderr}`);
    const device = attach.stdout.trim();
    try {
      const first = path.join(root, 'p1');
      assert.equal(init(['--pool', first, '--data', device, '--block-size', '4K']).status, 0);
      const rdev = fs.statSync(device).rdev;
      const node = path.join(root, 'same-device');
      const [major, minor] = [Math.floor(rdev / 256) & 0xfff, rdev & 0xff];
      assert.equal(spawnSync('mknod', [node, 'b', String(major), String(minor)]).status, 0);
      const agent = await startAgentProcess({ poolDir: first });
      const client = await AgentClient.connect(agent.url, { token: agent.token });
      try {
        for (const data of [device, node])
          refusedWith(init(['--pool', path.join(root, 'p2'), '--data', data]), 'POOL_LOCKED');
        // The file behind the loop device is claimed too, whatever --overwrite-data says.
        refusedWith(
          init(['--pool', path.join(root, 'p2'), '--data', backing, '--overwrite-data']),
          'POOL_LOCKED',
        );
        await client.call('createContainer', { name: 'v', type: 'vdisk', size: 1 << 20 });
        await client.write('v', 0, Buffer.alloc(4096, 5));
        await client.call('flush', {});
      } finally {
        await client.close();
        await agent.stop();
      }
      // Stopped, the file behind its device still says whose it is.
      refusedWith(init(['--pool', path.join(root, 'p2'), '--data', node]), 'INVALID_ARGUMENT', 'other-pool');
      assert.equal(fs.existsSync(path.join(root, 'p2')), false);
    } finally {
      spawnSync('losetup', ['-d', device]);
    }
  });

  it('refuses a --pool that is a symbolic link to nowhere, naming it (not a bare ENOENT)', () => {
    const root = tempDir();
    const link = path.join(root, 'pool-link');
    fs.symlinkSync(path.join(root, 'missing', 'pool'), link);
    const r = init(['--pool', link]);
    refusedWith(r, 'INVALID_ARGUMENT', 'dangling-link');
    assert.match(r.json.error!.message, /is a symbolic link to \S+missing\/pool, which does not exist/);
    assert.deepEqual(tree(root), ['pool-link']);
  });

  it('refuses a token file it cannot make (under /proc, at once) or an existing one serve would refuse, creating no pool', () => {
    const root = tempDir();
    const short = path.join(root, 'short-token');
    fs.writeFileSync(short, 'short\n', { mode: 0o600 });
    for (const [tokenFile, code, reason] of [
      ['/proc/no-such-pid/token', 'IO_ERROR', undefined],
      [short, 'INVALID_ARGUMENT', 'token-too-short'],
    ] as const) {
      const r = init(['--pool', path.join(root, 'p'), '--token-file', tokenFile], 'ulimit -t 20');
      refusedWith(r, code, reason);
      assert.equal(fs.existsSync(path.join(root, 'p')), false, `${tokenFile}: no pool`);
    }
  });

  it('makes the pool private to its owner under umask 022, and serve warns about a pool others can open', async () => {
    const pool = path.join(tempDir(), 'private');
    assert.equal(init(['--pool', pool, '--block-size', '4K', '--capacity', '64M'], 'umask 022').status, 0);
    assert.equal(fs.statSync(pool).mode & 0o777, 0o700);
    for (const name of ['data', 'data.1', 'data.2', 'data.3'])
      assert.equal(fs.statSync(path.join(pool, name)).mode & 0o077, 0, `${name} is the owner's alone`);
    const quiet = await startAgentProcess({ poolDir: pool });
    assert.equal(await quiet.stop(), 0);
    assert.doesNotMatch(quiet.logs(), /POOL_NOT_PRIVATE/);
    fs.chmodSync(pool, 0o755);
    const loud = await startAgentProcess({ poolDir: pool });
    assert.equal(await loud.stop(), 0);
    assert.match(loud.logs(), /"code":"POOL_NOT_PRIVATE","path":"[^"]*private","mode":"0755"/);
  });

  it("refuses a loop device over a running pool's data file or over a pool's metadata, and a hard link to either, even with --overwrite-data", async () => {
    const root = tempDir();
    const agent = await startAgentProcess();
    const loops: string[] = [];
    const loopOver = (file: string) => {
      const r = spawnSync('losetup', ['-f', '--show', file], { encoding: 'utf8' });
      assert.equal(r.status, 0, `losetup ${file}: ${r.stderr}`);
      loops.push(r.stdout.trim());
      return r.stdout.trim();
    };
    try {
      const metadata = path.join(agent.poolDir, 'meta', 'data.mdb');
      const link = path.join(root, 'metadata-link');
      fs.linkSync(metadata, link);
      for (const [data, code, reason] of [
        [loopOver(path.join(agent.poolDir, 'data')), 'POOL_LOCKED', undefined],
        [loopOver(metadata), 'INVALID_ARGUMENT', 'in-pool'],
        [link, 'INVALID_ARGUMENT', 'hard-linked'],
      ] as const) {
        const r = init([
          '--pool',
          path.join(root, 'p2'),
          '--data',
          data,
          '--overwrite-data',
          '--block-size',
          '4K',
        ]);
        refusedWith(r, code, reason);
        assert.equal(fs.existsSync(path.join(root, 'p2')), false, `${data}: nothing created`);
      }
    } finally {
      for (const loop of loops) spawnSync('losetup', ['-d', loop]);
      await agent.stop();
    }
  });
});
