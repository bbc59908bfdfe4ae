/**
 * Large O_DIRECT writes from a running QEMU guest while it reads the blocks
 * next to them: the agent writes runs of 1 MiB or more around the page cache
 * (engine/store/direct-writes.ts) while its NBD threads read neighbouring
 * blocks through the page cache with readahead, the one mix where a stale
 * cached page could serve old bytes. The guest writes 2 MiB chunks of random
 * data with O_DIRECT over a snapshot's data, a background loop reading the
 * chunks beside them all along; then every chunk, read back by the guest with
 * O_DIRECT and by the CLI, must be what was written, /metrics must show the
 * writes went direct, and fsck must pass. (Its first run found the guest's
 * second 2 MiB write hanging forever: relay/worker.mts.)
 */
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Pool } from '../../agent/engine';
import { type AgentProcess, agentCli, startAgentProcess } from '../helpers/agent-process';
import { guestBootFiles } from '../helpers/guest-initramfs';
import { bootGuest, type Guest, guestAccel } from '../helpers/qemu-guest';
import { runCli } from '../helpers/run-cli';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const MiB = 1 << 20;
const CHUNK = 2 * MiB;
const CHUNKS = 8;

describe('nbd: large O_DIRECT writes from a QEMU guest beside its own reads', function () {
  this.timeout(300_000);
  let agent: AgentProcess | null = null;
  let guest: Guest | null = null;

  after(async () => {
    await guest?.kill();
    await agent?.stop();
    cleanupTempDirs();
  });

  it('every chunk reads back as written (guest and CLI), the writes went around the page cache, fsck passes', async () => {
    guestBootFiles();
    console.log(`      guest accelerator: ${(await guestAccel()).accel}`);
    const dir = tempDir('snapsync-qemu-direct-');
    const poolDir = path.join(dir, 'pool');
    // The defaults an operator gets: 64 KiB blocks striped over four data files.
    await Pool.create(poolDir, { capacityBytes: 1 << 30 }).close();
    const socket = path.join(dir, 'nbd.sock');
    agent = await startAgentProcess({ poolDir, args: ['--nbd', `unix:${socket}`] });
    const cli = agentCli(agent);
    const base = path.join(agent.dir, 'base.img');
    fs.writeFileSync(base, Buffer.alloc(CHUNK * CHUNKS, 0xaa));
    cli('import', base, 'vm-disk0', '--create');
    cli('snapshot', 'vm-disk0', 'base');

    guest = await bootGuest(`nbd+unix:///vm-disk0?socket=${socket}`, { label: 'direct-writes' });
    const g = guest;
    await g.ok(
      `for i in $(seq 0 ${CHUNKS - 1}); do dd if=/dev/urandom of=/tmp/c$i bs=1M count=2 status=none; done`,
    );
    // Reads of every chunk, over and over, while the writes run (the connection moves to a transmission thread).
    await g.ok(
      `(while [ ! -e /tmp/stop ]; do for i in $(seq 0 ${CHUNKS - 1}); do dd if=/dev/vda of=/dev/null bs=64k count=32 skip=$((i * 32)) iflag=direct status=none; done; done) &`,
    );
    for (let i = 0; i < CHUNKS; i++) {
      const wrote = await g.run(
        `dd if=/tmp/c${i} of=/dev/vda bs=2M seek=${i} oflag=direct conv=fsync,notrunc status=none`,
        180_000,
      );
      assert.equal(wrote.rc, 0, g.report(`guest write ${i}: ${wrote.output}`));
    }
    await g.ok('touch /tmp/stop; wait');

    const sums = await g.ok(
      `for i in $(seq 0 ${CHUNKS - 1}); do echo "SUM $i $(md5sum < /tmp/c$i | cut -d' ' -f1) $(dd if=/dev/vda bs=2M skip=$i count=1 iflag=direct status=none | md5sum | cut -d' ' -f1)"; done`,
    );
    const rows = [...sums.matchAll(/^SUM (\d+) ([0-9a-f]{32}) ([0-9a-f]{32})$/gm)];
    assert.equal(rows.length, CHUNKS, g.report(`sums: ${sums}`));
    for (const [, i, written, read] of rows) {
      assert.equal(read, written, `chunk ${i}: the guest reads back what it wrote`);
      const out = path.join(dir, `chunk-${i}`);
      cli('read', 'vm-disk0', String(Number(i) * CHUNK), String(CHUNK), '--out', out);
      const host = fs.readFileSync(out);
      assert.equal(createHash('md5').update(host).digest('hex'), written, `chunk ${i}: the agent has it`);
    }
    const metrics = await (
      await fetch(`${agent.url.replace(/^ws/, 'http')}/metrics`, {
        headers: { authorization: `Bearer ${agent.token}` },
      })
    ).text();
    const direct = Number(/^snapsync_data_direct_write_bytes_total (\d+)$/m.exec(metrics)?.[1] ?? -1);
    console.log(`      written around the page cache: ${direct} bytes`);
    assert.ok(direct >= MiB, `the guest's large writes went direct (O_DIRECT): ${direct} bytes`);
    const kept = path.join(dir, 'snapshot');
    cli('read', 'vm-disk0', '0', String(MiB), '--snapshot', 'base', '--out', kept);
    const snapshot = fs.readFileSync(kept);
    assert.ok(
      snapshot.equals(Buffer.alloc(MiB, 0xaa)),
      "the snapshot keeps its data under the guest's writes",
    );

    await guest.kill();
    guest = null;
    assert.equal(await agent.stop(), 0);
    agent = null;
    const fsck = runCli(['fsck', '--pool', poolDir]);
    assert.equal(fsck.status, 0, fsck.out + fsck.err);
  });
});
