/**
 * Damage the open-time checks of the metadata file cannot see never reaches
 * a client as data: a map record naming a physical block the pool never
 * handed out fails with CORRUPT (NBD: EIO) and is never copied up; a data
 * file cut short keeps `serve` from opening the pool, and one cut under a
 * running agent makes reads of its blocks IO_ERROR (NBD: EIO), not zeros.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Pool } from '../../agent/engine';
import { setMapEntry } from '../engine/helpers/corrupt-records';
import { type AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { runCli } from '../helpers/run-cli';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const BS = 4096;
const CAPACITY_BLOCKS = 4096;

/** A closed pool with two data files: vdisk d's blocks 0-7 hold 0x5a (physical 1-8) and are snapshot d@s1. */
async function makePool(): Promise<string> {
  const dir = path.join(tempDir(), 'pool');
  const pool = Pool.create(dir, { blockSize: BS, capacityBytes: CAPACITY_BLOCKS * BS, dataFiles: 2 });
  pool.createContainer({ name: 'd', type: 'vdisk', size: 1 << 20 });
  pool.write('d', 0, Buffer.alloc(8 * BS, 0x5a));
  pool.snapshot('d', 's1');
  await pool.close();
  return dir;
}

/** qemu-io on export `name` of the agent's Unix socket. */
function qemuIo(socket: string, name: string, ...commands: string[]) {
  const args = ['-f', 'raw', ...commands.flatMap((c) => ['-c', c]), `nbd+unix:///${name}?socket=${socket}`];
  const r = spawnSync('qemu-io', args, { encoding: 'utf8', timeout: 60_000 });
  return `${r.stdout}${r.stderr}`;
}

async function serveWithNbd(poolDir: string): Promise<{ agent: AgentProcess; socket: string }> {
  const socket = path.join(tempDir(), 'nbd.sock');
  const agent = await startAgentProcess({ poolDir, args: ['--nbd', `unix:${socket}`] });
  return { agent, socket };
}

describe('damaged pools never serve wrong data silently', function () {
  this.timeout(300_000);
  after(cleanupTempDirs);

  it('a map record pointing outside the pool: read, NBD read and a partial write fail with CORRUPT; fsck names it', async () => {
    const dir = await makePool();
    // d@s1 is the pool's first table; its block 3 now points past every block the pool handed out.
    const damaged = CAPACITY_BLOCKS + 1000;
    assert.equal(await setMapEntry(dir, 1, 3, damaged), 4);
    const offline = runCli(['fsck', '--pool', dir]);
    assert.equal(offline.status, 4, offline.err);
    assert.match(offline.out, /BLOCK_OUT_OF_RANGE +table 1 block 3 → physical 5096/);

    const { agent, socket } = await serveWithNbd(dir);
    try {
      for (const ref of ['d@s1', 'd']) {
        const r = runCli(['read', ref, String(3 * BS), '16'], agent);
        assert.equal(r.status, 1, `read ${ref}: ${r.out}`);
        assert.match(r.err, /^error: \[CORRUPT\] table 1 block 3 → physical 5096 outside 1\.\.8/);
      }
      const healthy = runCli(['read', 'd', String(2 * BS), '4'], agent);
      assert.equal(healthy.status, 0, healthy.err);
      assert.match(healthy.out, /5a 5a 5a 5a/);

      assert.match(qemuIo(socket, 'd', `read -P 0x5a ${3 * BS} ${BS}`), /read failed: Input\/output error/);
      assert.match(qemuIo(socket, 'd', `read -P 0x5a ${2 * BS} ${BS}`), /read 4096\/4096 bytes/);
      // A partial write would copy the block up: refused, so nothing (zeros) becomes d's own block.
      assert.match(
        qemuIo(socket, 'd', `write -P 0x77 ${3 * BS + 512} 512`),
        /write failed: Input\/output error/,
      );
      const write = runCli(['write', 'd', String(3 * BS + 100), '--text', 'x'], agent);
      assert.equal(write.status, 1, write.out);
      assert.match(write.err, /\[CORRUPT\]/);
      assert.match(runCli(['read', 'd', String(3 * BS), '16'], agent).err, /\[CORRUPT\]/);

      const online = runCli(['fsck', '--json'], agent);
      const codes = JSON.parse(online.out).problems.map((p: { code: string }) => p.code);
      assert.ok(codes.includes('BLOCK_OUT_OF_RANGE'), online.out);
    } finally {
      assert.equal(await agent.stop(), 0);
    }
    const logged = agent
      .logs()
      .split('\n')
      .filter((l) => l.includes('damaged map record'));
    assert.equal(logged.length, 1, agent.logs());
    assert.deepEqual(
      (({ level, table, block, physical }) => ({ level, table, block, physical }))(JSON.parse(logged[0]!)),
      { level: 'error', table: 1, block: 3, physical: damaged },
    );
  });

  it('a data file shorter than the blocks in use in it: serve refuses to open the pool, naming the file and its sizes', async () => {
    const dir = await makePool();
    // Physical blocks 2, 4, 6, 8 are data.1's first four: it must hold 16 KiB.
    fs.truncateSync(path.join(dir, 'data.1'), BS);
    const r = runCli(['serve', '--pool', dir, '--listen', '127.0.0.1:0', '--insecure-no-auth']);
    assert.equal(r.status, 1, r.err);
    assert.match(
      r.err,
      /error: \[CORRUPT\] data file \S+\/data\.1 is 4096 bytes but must be at least 16384: blocks up to 8 are in use in it/,
    );
    const fsck = runCli(['fsck', '--pool', dir]);
    assert.equal(fsck.status, 4, fsck.err);
    assert.match(fsck.out, /DATA_FILE_SHORT +data file \S+\/data\.1 ends at byte 4096: 3 mapped block/);
  });

  it('a data file cut short under a running agent: reads of its blocks are IO_ERROR / EIO, not zeros', async () => {
    const { agent, socket } = await serveWithNbd(await makePool());
    try {
      fs.truncateSync(path.join(agent.poolDir, 'data.1'), 0);
      // Block 1 of d is physical 2, in data.1; block 0 (physical 1) is in data.
      const cut = runCli(['read', 'd', String(BS), '16'], agent);
      assert.equal(cut.status, 1, cut.out);
      assert.match(cut.err, /^error: \[IO_ERROR\] read of \S+\/data\.1 failed: EIO/);
      assert.match(qemuIo(socket, 'd', `read -P 0x5a ${BS} ${BS}`), /read failed: Input\/output error/);
      assert.match(qemuIo(socket, 'd', `read -P 0x5a 0 ${BS}`), /read 4096\/4096 bytes/);
    } finally {
      assert.equal(await agent.stop(), 0);
    }
  });
});
