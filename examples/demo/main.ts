/**
 * The main job on an embedded default pool: create a pool, a production VM
 * (a .vmx config file and two disks), snapshot it, sync a staging VM to the
 * snapshot, and print what happened. `make demo` runs it; `--json` prints the
 * report as JSON; SNAPSYNC_DEMO_DIR keeps the pool in a directory of your choice.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Pool } from '../../agent/engine';

const MiB = 1 << 20;

function vmx(name: string, uuid: string, mac: string): string {
  return [
    '.encoding = "UTF-8"',
    'config.version = "8"',
    'virtualHW.version = "21"',
    `displayName = "${name}"`,
    'guestOS = "ubuntu-64"',
    'memSize = "8192"',
    'numvcpus = "4"',
    `uuid.bios = "${uuid}"`,
    'scsi0:0.fileName = "disk0.vmdk"',
    'scsi0:1.fileName = "disk1.vmdk"',
    'ethernet0.present = "TRUE"',
    'ethernet0.addressType = "generated"',
    `ethernet0.generatedAddress = "${mac}"`,
    `guestinfo.hostname = "${name}"`,
    '',
  ].join('\n');
}

function buildVm(pool: Pool, name: string, uuid: string, mac: string, fill: number): void {
  pool.createContainer({ name, type: 'vm', labels: { env: name.split('-')[0]! } });
  pool.createContainer({ name: `${name}-config`, type: 'file', file: { mode: 0o600 } });
  pool.write(`${name}-config`, 0, Buffer.from(vmx(name, uuid, mac)));
  for (const disk of ['disk0', 'disk1']) {
    pool.createContainer({ name: `${name}-${disk}`, type: 'vdisk', size: 64 * MiB });
    pool.write(`${name}-${disk}`, 0, Buffer.alloc(8 * MiB, fill));
  }
  pool.addMember(name, 'config', `${name}-config`);
  pool.addMember(name, 'disk0', `${name}-disk0`);
  pool.addMember(name, 'disk1', `${name}-disk1`);
}

const configLine = (pool: Pool, vm: string, key: string) => {
  const name = `${vm}-config`;
  const text = pool.read(name, 0, pool.describe(name).size).toString();
  return text.split('\n').find((l) => l.startsWith(`${key} =`)) ?? '';
};

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  const keep = process.env.SNAPSYNC_DEMO_DIR;
  const dir = keep ?? fs.mkdtempSync(path.join(os.tmpdir(), 'snapsync-demo-'));
  const poolDir = path.join(dir, 'pool');
  if (keep) fs.rmSync(poolDir, { recursive: true, force: true });
  const pool = Pool.create(poolDir, { capacityBytes: 4 * 1024 * MiB });
  try {
    buildVm(pool, 'prod-web', '56 4d 11 22 33 44 55 66-77 88 99 aa bb cc dd ee', '00:50:56:aa:00:01', 0x50);
    buildVm(
      pool,
      'staging-web',
      '56 4d ff ee dd cc bb aa-99 88 77 66 55 44 33 22',
      '00:50:56:bb:00:02',
      0x5a,
    );
    await pool.flush();
    const snapshot = pool.snapshot('prod-web', 'nightly-2026-11-24');
    const usedBefore = pool.info().usedBlocks;
    const t0 = process.hrtime.bigint();
    const result = pool.sync('staging-web', 'prod-web@nightly-2026-11-24');
    await pool.durable();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const report = {
      pool: { dir: poolDir, blockSize: pool.info().blockSize },
      snapshot: { name: `${snapshot.container}@${snapshot.name}`, members: Object.keys(snapshot.members) },
      sync: {
        target: result.target.name,
        targetUuid: result.target.uuid,
        generation: result.generation,
        members: result.members,
        safetySnapshot:
          result.safetySnapshot && `${result.safetySnapshot.container}@${result.safetySnapshot.name}`,
        milliseconds: Number(ms.toFixed(2)),
        metadataEntries: result.metadataEntries,
        dataBlocksCopied: pool.info().usedBlocks - usedBefore,
      },
      after: {
        stagingDisk0ReadsProduction: pool
          .read('staging-web-disk0', 0, MiB)
          .equals(pool.read('prod-web-disk0', 0, MiB)),
        stagingLabels: pool.describe('staging-web').labels,
        stagingConfigDisplayName: configLine(pool, 'staging-web', 'displayName'),
        lineage: pool
          .lineage('staging-web-disk0')
          .map((l) => (l.snapshot ? `${l.snapshot.container}@${l.snapshot.name}` : l.kind)),
        usage: pool.usage('staging-web'),
      },
      fsck: await pool.fsck(),
    };
    if (json) {
      console.log(JSON.stringify(report, null, 2));
      return;
    }
    const s = report.sync;
    console.log(`snapsync demo — pool ${poolDir} (block size ${report.pool.blockSize / 1024} KiB)`);
    console.log(`snapshot  ${report.snapshot.name} covers ${report.snapshot.members.join(', ')}`);
    console.log(
      `sync      ${s.target} ← ${report.snapshot.name} in ${s.milliseconds} ms, generation ${s.generation}`,
    );
    for (const m of s.members)
      console.log(`          ${m.role?.padEnd(7)} ${m.container} now reads ${m.source}`);
    console.log(
      `          ${s.metadataEntries} metadata entries written, ${s.dataBlocksCopied} data blocks copied`,
    );
    console.log(`          undo with: revert staging-web ${s.safetySnapshot}`);
    console.log(
      `after     staging disk0 reads production's data: ${report.after.stagingDisk0ReadsProduction}`,
    );
    console.log(
      `          staging keeps its container identity: uuid ${s.targetUuid}, labels ${JSON.stringify(report.after.stagingLabels)}`,
    );
    console.log(`          staging config now says: ${report.after.stagingConfigDisplayName}`);
    console.log(
      `          (restoring identity inside the config and disk labels is the identity profiles' job)`,
    );
    console.log(`          lineage of staging-web-disk0: ${report.after.lineage.join(' → ')}`);
    const u = report.after.usage;
    const mib = (n: number) => (n / MiB).toFixed(1);
    console.log(
      `          usage: ${mib(u.logicalBytes)} MiB logical, ${mib(u.mappedBytes)} MiB mapped, ${mib(u.sharedBytes)} MiB shared with production`,
    );
    console.log(
      `fsck      ${report.fsck.ok ? 'clean' : `${report.fsck.problems.length} problem(s)`} (${report.fsck.checked.mapEntries} map entries checked)`,
    );
    if (!report.fsck.ok) process.exitCode = 1;
  } finally {
    await pool.close();
    if (!keep) fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
