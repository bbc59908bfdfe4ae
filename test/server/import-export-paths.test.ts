/**
 * Import/export paths against a real agent process: no symlink is followed
 * anywhere in a path, only regular files are read or written, nothing a
 * client names can block the agent, an export never writes through an
 * existing inode, and an interrupted `import --create` leaves no container.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { AgentClient, AgentError } from '../../agent/client/client';
import { Pool } from '../../agent/engine';
import { type AgentProcess, killAgentsTestsLeave, startAgentProcess } from '../helpers/agent-process';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Asserts the call is refused with `expected`, and says what happened instead. */
async function refused(call: Promise<unknown>, expected: string, what: string): Promise<void> {
  let outcome: string;
  try {
    await call;
    outcome = 'it succeeded';
  } catch (err) {
    if (err instanceof AgentError && err.code === expected) return;
    outcome = err instanceof AgentError ? `${err.code}: ${err.message}` : String(err);
  }
  assert.fail(`${what}: expected ${expected}, but ${outcome}`);
}

/** Resolves with the call's outcome, or 'no answer' if the agent does not answer within `ms`. */
function answerWithin<T>(call: Promise<T>, ms: number): Promise<T | 'no answer'> {
  return Promise.race([
    call,
    new Promise<'no answer'>((resolve) => setTimeout(() => resolve('no answer'), ms).unref()),
  ]);
}

function healthz(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/healthz' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on('error', reject);
  });
}

describe('import/export paths (real agent process)', function () {
  this.timeout(120_000);
  killAgentsTestsLeave();
  let agent: AgentProcess;
  let client: AgentClient;
  let allowed: string;
  let outside: string;
  const vdiskBytes = Buffer.alloc(64 * KiB, 0x5a);

  before(async () => {
    agent = await startAgentProcess();
    client = await AgentClient.connect(agent.url, { token: agent.token });
    allowed = path.join(agent.dir, 'images');
    fs.mkdirSync(allowed);
    outside = tempDir('snapsync-outside-');
    await client.call('createContainer', { name: 'v', type: 'vdisk', size: vdiskBytes.length });
    await client.write('v', 0, vdiskBytes);
    await client.call('flush', {});
  });

  after(async () => {
    await client?.close();
    await agent?.stop();
    cleanupTempDirs();
  });

  const decoy = (name: string) => {
    const file = path.join(outside, name);
    fs.writeFileSync(file, 'decoy');
    return file;
  };

  it("the pool's own directory and files are out of reach, though the allowed directory holds them", async () => {
    // startAgentProcess allows the directory the pool is in: an operator's --allow-dir /var/lib may too.
    const pool = agent.poolDir;
    assert.ok(pool.startsWith(`${agent.dir}/`));
    const listing = () => fs.readdirSync(pool).sort();
    const before = listing();
    const digest = (f: string) => fs.readFileSync(path.join(pool, f)).toString('base64');
    const data = digest('data');
    // Another name of a pool file, outside the pool directory (as a bind mount would give one).
    const otherName = path.join(allowed, 'metadata-link');
    fs.linkSync(path.join(pool, 'meta', 'data.mdb'), otherName);
    const tries: Array<[string, Promise<unknown>]> = [
      ['import of another name of the metadata', client.call('import', { container: 'v', path: otherName })],
      [
        'export over another name of the metadata',
        client.call('export', { container: 'v', path: otherName, overwrite: true }),
      ],
      ['import of a data file', client.call('import', { container: 'v', path: path.join(pool, 'data.1') })],
      [
        'import of the metadata',
        client.call('import', { container: 'v', path: path.join(pool, 'meta', 'data.mdb') }),
      ],
      [
        'export over a data file',
        client.call('export', { container: 'v', path: path.join(pool, 'data'), overwrite: true }),
      ],
      [
        'export of a new file into the pool',
        client.call('export', { container: 'v', path: path.join(pool, 'v.raw') }),
      ],
      [
        'export into the metadata directory',
        client.call('export', { container: 'v', path: path.join(pool, 'meta', 'v.raw') }),
      ],
    ];
    for (const [what, call] of tries) {
      try {
        await call;
        assert.fail(`${what} succeeded`);
      } catch (err) {
        assert.ok(err instanceof AgentError, `${what}: ${err}`);
        assert.equal(err.code, 'PATH_NOT_ALLOWED', `${what}: ${err.message}`);
        assert.equal(err.details.reason, 'pool', what);
      }
    }
    assert.deepEqual(listing(), before, 'a file appeared in the pool directory');
    assert.equal(fs.statSync(otherName).ino, fs.statSync(path.join(pool, 'meta', 'data.mdb')).ino);
    fs.rmSync(otherName);
    assert.equal(digest('data'), data, 'the data file changed');
    // The agent still serves the pool as before.
    assert.ok((await client.read('v', 0, vdiskBytes.length)).equals(vdiskBytes));
  });

  it('an --allow-dir inside the pool directory is refused at start', async () => {
    const poolDir = path.join(tempDir(), 'pool');
    await Pool.create(poolDir, { blockSize: 4096, capacityBytes: 1 << 24 }).close();
    await assert.rejects(
      startAgentProcess({ poolDir, args: ['--allow-dir', path.join(poolDir, 'meta')] }),
      /--allow-dir \S+ is inside the pool/,
    );
  });

  it('export --overwrite onto a symlink to a file outside refuses, and the file outside is untouched', async () => {
    const target = decoy('decoy-overwrite.txt');
    const link = path.join(allowed, 'link-overwrite');
    fs.symlinkSync(target, link);
    await refused(
      client.call('export', { container: 'v', path: link, overwrite: true }),
      'NOT_A_REGULAR_FILE',
      'export --overwrite onto a symlink',
    );
    assert.equal(fs.readFileSync(target, 'utf8'), 'decoy', 'the file outside was overwritten');
    assert.ok(fs.lstatSync(link).isSymbolicLink());
  });

  it('export without --overwrite onto a symlink or a dangling symlink: ALREADY_EXISTS, nothing created', async () => {
    const target = decoy('decoy-plain.txt');
    const link = path.join(allowed, 'link-plain');
    fs.symlinkSync(target, link);
    await refused(client.call('export', { container: 'v', path: link }), 'ALREADY_EXISTS', 'onto a symlink');
    const missing = path.join(outside, 'not-there.txt');
    const dangling = path.join(allowed, 'dangling');
    fs.symlinkSync(missing, dangling);
    for (const overwrite of [false, true]) {
      await refused(
        client.call('export', { container: 'v', path: dangling, overwrite }),
        overwrite ? 'NOT_A_REGULAR_FILE' : 'ALREADY_EXISTS',
        `onto a dangling symlink (overwrite ${overwrite})`,
      );
    }
    assert.equal(fs.existsSync(missing), false, 'the dangling link target was created');
    assert.equal(fs.readFileSync(target, 'utf8'), 'decoy');
  });

  it('export --overwrite of a name hard-linked to a file outside replaces the name, not the file outside', async () => {
    const target = decoy('decoy-hardlink.txt');
    const name = path.join(allowed, 'hardlinked.img');
    fs.linkSync(target, name);
    const r = await client.call('export', { container: 'v', path: name, overwrite: true });
    assert.equal(r.bytes, vdiskBytes.length);
    assert.ok(fs.readFileSync(target, 'utf8') === 'decoy', 'the export wrote through the hard link');
    assert.ok(fs.readFileSync(name).equals(vdiskBytes));
    // No temporary file stays behind.
    assert.deepEqual(
      fs.readdirSync(allowed).filter((f) => f.includes('snapsync')),
      [],
    );
  });

  it('a path through a symlinked directory (PATH_NOT_ALLOWED) or to a symlink (NOT_A_REGULAR_FILE), even inside, is refused', async () => {
    const real = path.join(allowed, 'real-dir');
    fs.mkdirSync(real);
    fs.writeFileSync(path.join(real, 'img'), Buffer.alloc(8 * KiB, 1));
    fs.symlinkSync(real, path.join(allowed, 'dir-link'));
    await refused(
      client.call('import', {
        path: path.join(allowed, 'dir-link', 'img'),
        container: 'via-dir-link',
        create: true,
      }),
      'PATH_NOT_ALLOWED',
      'import through a symlinked directory',
    );
    await refused(
      client.call('export', { container: 'v', path: path.join(allowed, 'dir-link', 'out.img') }),
      'PATH_NOT_ALLOWED',
      'export through a symlinked directory',
    );
    assert.equal(fs.existsSync(path.join(real, 'out.img')), false);
    fs.symlinkSync(path.join(real, 'img'), path.join(allowed, 'file-link'));
    await refused(
      client.call('import', {
        path: path.join(allowed, 'file-link'),
        container: 'via-file-link',
        create: true,
      }),
      'NOT_A_REGULAR_FILE',
      'import of a symlink to a file inside',
    );
    // The real file, named directly, imports.
    const ok = await client.call('import', {
      path: path.join(real, 'img'),
      container: 'direct',
      create: true,
    });
    assert.equal(ok.bytes, 8 * KiB);
  });

  it('empty and dot components are refused', async () => {
    for (const p of [`${allowed}//x.img`, `${allowed}/./x.img`, `${allowed}/sub/../x.img`, `${allowed}/`]) {
      await refused(client.call('export', { container: 'v', path: p }), 'PATH_NOT_ALLOWED', `export to ${p}`);
    }
    // Each says what is wrong with the path: a NUL byte is not an empty component, the allowed directory not outside it.
    for (const [p, message] of [
      [`${allowed}/a\0b.img`, /contains a NUL byte/],
      [agent.dir, /is an allowed directory itself: name a file in it/],
      [`${allowed}/./x.img`, /has an empty, "\." or "\.\." component/],
    ] as const) {
      const err = await client.call('export', { container: 'v', path: p }).then(
        () => assert.fail(`export to ${p} succeeded`),
        (e: unknown) => e,
      );
      assert.ok(err instanceof AgentError && err.code === 'PATH_NOT_ALLOWED', String(err));
      assert.match(err.message, message);
    }
  });

  it('importing a FIFO answers NOT_A_REGULAR_FILE at once, and the agent never stops serving', async () => {
    const fifo = path.join(allowed, 'fifo');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    const outcome = await answerWithin(
      client.call('import', { path: fifo, container: 'from-fifo', create: true }).then(
        () => 'accepted',
        (err) => (err instanceof AgentError ? err.code : String(err)),
      ),
      10_000,
    );
    if (outcome === 'no answer') {
      const health = await answerWithin(healthz(agent.port), 2_000);
      // Let the frozen agent go on, so the other tests can run.
      fs.closeSync(fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
      assert.fail(`import of a FIFO: no answer within 10 s (/healthz meanwhile: ${health})`);
    }
    assert.equal(outcome, 'NOT_A_REGULAR_FILE');
    assert.equal(await healthz(agent.port), 200);
    await refused(
      client.call('describe', { container: 'from-fifo' }),
      'NOT_FOUND',
      'no container was created',
    );
    await refused(
      client.call('export', { container: 'v', path: fifo, overwrite: true }),
      'NOT_A_REGULAR_FILE',
      'export --overwrite onto a FIFO',
    );
  });

  it('a directory, a socket and a character device are refused with NOT_A_REGULAR_FILE', async () => {
    const dir = path.join(allowed, 'a-dir');
    fs.mkdirSync(dir);
    const sock = path.join(allowed, 'sock');
    const server = net.createServer().listen(sock);
    await new Promise((resolve) => server.once('listening', resolve));
    const chr = path.join(allowed, 'null');
    assert.equal(spawnSync('mknod', [chr, 'c', '1', '3']).status, 0, 'mknod (the tests run as root)');
    try {
      for (const p of [dir, sock, chr]) {
        await refused(
          client.call('import', { path: p, container: 'from-special', create: true }),
          'NOT_A_REGULAR_FILE',
          `import of ${path.basename(p)}`,
        );
      }
      for (const p of [dir, sock, chr]) {
        await refused(
          client.call('export', { container: 'v', path: p, overwrite: true }),
          'NOT_A_REGULAR_FILE',
          `export --overwrite onto ${path.basename(p)}`,
        );
      }
    } finally {
      server.close();
    }
    await refused(
      client.call('describe', { container: 'from-special' }),
      'NOT_FOUND',
      'no container created',
    );
  });

  it('importing a file with more than one hard link is refused (it may be a file outside)', async () => {
    const target = path.join(outside, 'secret.img');
    fs.writeFileSync(target, Buffer.alloc(8 * KiB, 9));
    const name = path.join(allowed, 'linked-secret.img');
    fs.linkSync(target, name);
    await refused(
      client.call('import', { path: name, container: 'secret', create: true }),
      'PATH_NOT_ALLOWED',
      'import of a hard-linked file',
    );
  });
});

describe('import --create is all-or-nothing (SIGKILL, real agent process)', function () {
  this.timeout(120_000);
  killAgentsTestsLeave();
  after(cleanupTempDirs);

  it('a kill during import --create leaves no container, and the retry with the same key succeeds', async () => {
    let agent = await startAgentProcess();
    const image = path.join(agent.dir, 'big.img');
    const fd = fs.openSync(image, 'w');
    for (let chunk = 0; chunk < 16; chunk++) fs.writeSync(fd, Buffer.alloc(4 * MiB, chunk + 1));
    fs.closeSync(fd);
    let client = await AgentClient.connect(agent.url, { token: agent.token });
    const params = { path: image, container: 'imported', create: true };
    let killed: Promise<void> | null = null;
    await client
      .call('import', params, {
        idempotencyKey: 'urn:import:crash',
        onProgress: () => {
          if (killed === null) killed = agent.kill(); // at the first chunk: 15 of 16 still to come
        },
      })
      .catch(() => {});
    assert.ok(killed, 'the import sent progress before it ended');
    await killed;
    await client.close().catch(() => {});

    agent = await startAgentProcess({
      poolDir: agent.poolDir,
      token: agent.token,
      args: ['--allow-dir', path.dirname(image)],
    });
    client = await AgentClient.connect(agent.url, { token: agent.token });
    try {
      const names = (await client.call('listContainers', {})).map((c: { name: string }) => c.name);
      assert.deepEqual(names, [], 'a partial container survived the kill');
      assert.equal((await client.call('fsck', {})).ok, true);
      const r = await client.call('import', params, { idempotencyKey: 'urn:import:crash' });
      assert.equal(r.bytes, 64 * MiB);
      for (let chunk = 0; chunk < 16; chunk++) {
        const got = await client.read('imported', chunk * 4 * MiB + 4096, 16);
        assert.ok(got.equals(Buffer.alloc(16, chunk + 1)), `chunk ${chunk}`);
      }
    } finally {
      await client.close();
      await agent.stop();
    }
  });
});

describe('block devices in an allowed directory (real loop device)', function () {
  this.timeout(120_000);
  killAgentsTestsLeave();
  let loop = '';
  after(() => {
    if (loop) spawnSync('losetup', ['-d', loop]);
    cleanupTempDirs();
  });

  it('are refused unless serve --allow-block-devices; then export overwrites the whole device and import reads it', async () => {
    const backing = path.join(tempDir('snapsync-loop-'), 'backing.img');
    fs.writeFileSync(backing, Buffer.alloc(MiB, 0xff));
    const attach = spawnSync('losetup', ['-f', '--show', backing], { encoding: 'utf8' });
    assert.equal(attach.status, 0, `losetup: ${attach.stderr}`);
    loop = attach.stdout.trim();
    const rdev = fs.statSync(loop).rdev;
    const [major, minor] = [Math.floor(rdev / 256) & 0xfff, rdev & 0xff];
    for (const allow of [false, true]) {
      const agent = await startAgentProcess({ args: allow ? ['--allow-block-devices'] : [] });
      const client = await AgentClient.connect(agent.url, { token: agent.token });
      const node = path.join(agent.dir, 'disk');
      assert.equal(spawnSync('mknod', [node, 'b', String(major), String(minor)]).status, 0);
      await client.call('createContainer', { name: 'v', type: 'vdisk', size: 64 * KiB });
      await client.write('v', 4 * KiB, Buffer.alloc(4 * KiB, 3));
      try {
        if (!allow) {
          await refused(
            client.call('import', { path: node, container: 'dev', create: true }),
            'NOT_A_REGULAR_FILE',
            'import',
          );
          await refused(
            client.call('export', { container: 'v', path: node, overwrite: true }),
            'NOT_A_REGULAR_FILE',
            'export',
          );
          continue;
        }
        await refused(
          client.call('export', { container: 'v', path: node }),
          'ALREADY_EXISTS',
          'without overwrite',
        );
        await client.call('export', { container: 'v', path: node, overwrite: true });
        const r = await client.call('import', { path: node, container: 'dev', create: true });
        assert.equal(r.bytes, MiB);
        const head = await client.read('dev', 0, 64 * KiB);
        const expected = Buffer.alloc(64 * KiB);
        expected.fill(3, 4 * KiB, 8 * KiB);
        assert.ok(head.equals(expected), 'the holes were written as zeros, the data as data');
        assert.ok((await client.read('dev', 64 * KiB, 4 * KiB)).equals(Buffer.alloc(4 * KiB, 0xff)));
      } finally {
        await client.close();
        await agent.stop();
      }
    }
  });

  it("a pool's data device is out of reach through any node of it, even with --allow-block-devices", async () => {
    const backing = path.join(tempDir('snapsync-loop-'), 'pool-device.img');
    fs.writeFileSync(backing, Buffer.alloc(4 * MiB));
    const device = attachLoop(backing, false);
    try {
      const poolDir = path.join(tempDir(), 'pool');
      await Pool.create(poolDir, { blockSize: 4096, capacityBytes: 4 * MiB, dataPath: device }).close();
      const agent = await startAgentProcess({ poolDir, args: ['--allow-block-devices'] });
      const client = await AgentClient.connect(agent.url, { token: agent.token });
      try {
        await client.call('createContainer', { name: 'v', type: 'vdisk', size: 64 * KiB });
        await client.write('v', 0, Buffer.alloc(4 * KiB, 9));
        await client.call('flush', {});
        const node = nodeFor(device, agent.dir);
        for (const [what, call] of [
          ['import', () => client.call('import', { path: node, container: 'copy', create: true })],
          ['export', () => client.call('export', { container: 'v', path: node, overwrite: true })],
        ] as const) {
          const err = await call().then(
            () => assert.fail(`${what} through another node of the data device succeeded`),
            (e: unknown) => e,
          );
          assert.ok(err instanceof AgentError && err.code === 'PATH_NOT_ALLOWED', `${what}: ${err}`);
          assert.equal(err.details.reason, 'pool', what);
        }
        assert.ok((await client.read('v', 0, 4 * KiB)).equals(Buffer.alloc(4 * KiB, 9)));

        // Loop devices made once the agent runs: over the data device, and over the file behind it;
        // and that file itself, by a hard link in the allowed directory.
        const overDevice = attachLoop(device, true);
        const overBacking = attachLoop(backing, true);
        fs.linkSync(backing, path.join(agent.dir, 'backing-link.img'));
        for (const [what, node] of [
          ['a loop device over the data device', nodeFor(overDevice, agent.dir)],
          ['a loop device over the file behind it', nodeFor(overBacking, agent.dir)],
          ['the file behind it', path.join(agent.dir, 'backing-link.img')],
        ] as const) {
          const err = await client.call('import', { path: node, container: 'copy', create: true }).then(
            () => assert.fail(`import of ${what} succeeded`),
            (e: unknown) => e,
          );
          assert.ok(err instanceof AgentError && err.code === 'PATH_NOT_ALLOWED', `${what}: ${err}`);
          assert.equal(err.details.reason, 'pool', what);
        }
      } finally {
        await client.close();
        await agent.stop();
      }
    } finally {
      detachLoops();
    }
  });

  it("a loop device over one of the pool's data files is out of reach, read-only or not", async () => {
    const poolDir = path.join(tempDir(), 'pool');
    await Pool.create(poolDir, { blockSize: 4096, capacityBytes: 4 * MiB, dataFiles: 2 }).close();
    const agent = await startAgentProcess({ poolDir, args: ['--allow-block-devices'] });
    const client = await AgentClient.connect(agent.url, { token: agent.token });
    try {
      await client.call('createContainer', { name: 'v', type: 'vdisk', size: 64 * KiB });
      await client.write('v', 0, Buffer.alloc(64 * KiB, 7));
      await client.call('flush', {});
      const readOnly = nodeFor(attachLoop(path.join(poolDir, 'data'), true), agent.dir);
      await refusedAsPool(
        client.call('import', { path: readOnly, container: 'leak', create: true }),
        'import',
      );
      const writable = nodeFor(attachLoop(path.join(poolDir, 'data.1'), false), agent.dir);
      await refusedAsPool(
        client.call('export', { container: 'v', path: writable, overwrite: true }),
        'export',
      );
      // A device over something else in the allowed directory stays usable.
      const other = path.join(agent.dir, 'other.img');
      fs.writeFileSync(other, Buffer.alloc(64 * KiB, 1));
      await client.call('import', {
        path: nodeFor(attachLoop(other, true), agent.dir),
        container: 'o',
        create: true,
      });
      assert.ok((await client.read('o', 0, 4 * KiB)).equals(Buffer.alloc(4 * KiB, 1)));
      assert.ok((await client.read('v', 0, 64 * KiB)).equals(Buffer.alloc(64 * KiB, 7)));
    } finally {
      await client.close();
      await agent.stop();
      detachLoops();
    }
  });
});

const attachedLoops: string[] = [];

/** Attaches a loop device over `file` (read-only or not); detachLoops() detaches them. */
function attachLoop(file: string, readOnly: boolean): string {
  const r = spawnSync('losetup', [...(readOnly ? ['-r'] : []), '-f', '--show', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, `losetup ${file}: ${r.stderr}`);
  const device = r.stdout.trim();
  attachedLoops.push(device);
  return device;
}

function detachLoops(): void {
  for (const device of attachedLoops.splice(0)) spawnSync('losetup', ['-d', device]);
}

/** A new node in `dir` for block device `device` (as an operator's or attacker's mknod would make). */
function nodeFor(device: string, dir: string): string {
  const rdev = fs.statSync(device).rdev;
  const node = path.join(dir, `node-${path.basename(device)}`);
  const [major, minor] = [Math.floor(rdev / 256) & 0xfff, (rdev & 0xff) | ((rdev >> 12) & ~0xff)];
  assert.equal(spawnSync('mknod', [node, 'b', String(major), String(minor)]).status, 0, `mknod ${node}`);
  return node;
}

async function refusedAsPool(call: Promise<unknown>, what: string): Promise<void> {
  const err = await call.then(
    () => assert.fail(`${what} succeeded`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof AgentError && err.code === 'PATH_NOT_ALLOWED', `${what}: ${err}`);
  assert.equal(err.details.reason, 'pool', what);
}
