/**
 * The main job on an embedded default pool, through the agent and its CLI:
 * `snapsync-agent init` a pool, `serve` it on loopback, then with the CLI
 * create a production VM (a .vmx config file and two disks), snapshot it,
 * create a staging VM, sync it to the snapshot, and print what happened.
 * When a Pulumi CLI is on the PATH (or named by SNAPSYNC_PULUMI), it then
 * runs examples/refresh-staging with it against a second agent: `pulumi up`,
 * a no-change `up`, a new nightly snapshot (a re-sync in place), `destroy`.
 * `--json` prints the report as JSON; SNAPSYNC_DEMO_DIR keeps the pool.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { OpMap } from '@pulumi/pulumi/automation';
import { createExampleStack, findPulumiCli } from './pulumi-stack';

const BIN = path.resolve(__dirname, '../../bin/snapsync-agent');
const MiB = 1 << 20;

/** A VM's .vmx: its own identity, and references to its own disk files and network (never the other VM's). */
function vmx(name: string, uuid: string, mac: string, network: string): string {
  return [
    '.encoding = "UTF-8"',
    'config.version = "8"',
    'virtualHW.version = "21"',
    `displayName = "${name}"`,
    'guestOS = "ubuntu-64"',
    'memSize = "8192"',
    'numvcpus = "4"',
    `uuid.bios = "${uuid}"`,
    `scsi0:0.fileName = "${name}-disk0.vmdk"`,
    `scsi0:1.fileName = "${name}-disk1.vmdk"`,
    'ethernet0.present = "TRUE"',
    `ethernet0.networkName = "${network}"`,
    'ethernet0.addressType = "generated"',
    `ethernet0.generatedAddress = "${mac}"`,
    `guestinfo.hostname = "${name}"`,
    '',
  ].join('\n');
}

/** The agent CLI with --json, against the agent at url(); throws on a non-zero exit. */
function agentCli(tokenFile: string, url: () => string) {
  return (...args: string[]) => {
    const r = spawnSync(process.execPath, [BIN, ...args, '--json'], {
      encoding: 'utf8',
      env: { ...process.env, SNAPSYNC_TOKEN_FILE: tokenFile, SNAPSYNC_URL: url() },
    });
    if (r.status !== 0)
      throw new Error(`snapsync-agent ${args.join(' ')} failed (${r.status}): ${r.stdout}${r.stderr}`);
    return JSON.parse(r.stdout);
  };
}

/** The two VMs: name, BIOS UUID, MAC, the byte their disks are filled with, and their network. */
const VMS = [
  ['prod-web', '56 4d 11 22 33 44 55 66-77 88 99 aa bb cc dd ee', '00:50:56:aa:00:01', 'P', 'prod-frontend'],
  [
    'staging-web',
    '56 4d ff ee dd cc bb aa-99 88 77 66 55 44 33 22',
    '00:50:56:bb:00:02',
    'S',
    'staging-frontend',
  ],
] as const;

interface Agent {
  url: string;
  stop(): Promise<void>;
}

/** `snapsync-agent serve` on a loopback port the system picks; resolves once it listens. */
async function serve(poolDir: string, tokenFile: string, allowDir: string): Promise<Agent> {
  const child: ChildProcess = spawn(
    process.execPath,
    [
      BIN,
      'serve',
      '--pool',
      poolDir,
      '--token-file',
      tokenFile,
      '--listen',
      '127.0.0.1:0',
      '--allow-dir',
      allowDir,
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!).listening);
    });
    child.on('exit', (code) => reject(new Error(`agent exited (${code})`)));
  });
  return {
    url,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

/** "3 created, 1 updated": an update's resource changes, without the unchanged ones. */
function changes(ops: OpMap | undefined): string {
  const shown = Object.entries(ops ?? {}).filter(([op, n]) => op !== 'same' && n);
  return shown.length ? shown.map(([op, n]) => `${n} ${op}`).join(', ') : 'no changes';
}

/**
 * examples/refresh-staging with the real Pulumi CLI, on a pool of its own:
 * up, up again (no changes), a new snapshot name (an in-place re-sync), destroy.
 */
async function pulumiSection(pulumi: string, dir: string, say: (line: string) => void) {
  const poolDir = path.join(dir, 'pulumi-pool');
  const tokenFile = path.join(dir, 'pulumi-token');
  let url = '';
  const cli = agentCli(tokenFile, () => url);
  cli('init', '--pool', poolDir, '--token-file', tokenFile);
  const agent = await serve(poolDir, tokenFile, dir);
  url = agent.url;
  const example = await createExampleStack({
    pulumi,
    agentUrl: agent.url,
    token: fs.readFileSync(tokenFile, 'utf8').trim(),
    config: { snapshotName: 'nightly-2026-11-24', diskSize: String(64 * MiB) },
  });
  try {
    const version = spawnSync(pulumi, ['version'], { encoding: 'utf8' }).stdout.trim();
    say(`\n$ pulumi up          (examples/refresh-staging, Pulumi CLI ${version}, agent ${agent.url})`);
    const first = await example.stack.up();
    say(`    ${changes(first.summary.resourceChanges)}`);
    // The hypervisor writes each VM's config (outside Pulumi); tonight's snapshot carries production's.
    for (const [vm, uuid, mac, , network] of VMS) {
      fs.writeFileSync(path.join(dir, `${vm}.vmx`), vmx(vm, uuid, mac, network));
      cli('write', `${vm}-config`, '0', '--file', path.join(dir, `${vm}.vmx`));
    }
    say('$ snapsync-agent write <vm>-config 0 --file <vm>.vmx   (for prod-web and staging-web)');
    const again = await example.stack.up();
    say(`$ pulumi up          → ${changes(again.summary.resourceChanges)}`);
    await example.stack.setConfig('snapshotName', { value: 'nightly-2026-11-25' });
    const resync = await example.stack.up();
    say(
      `$ pulumi config set snapshotName nightly-2026-11-25 && pulumi up → ${changes(resync.summary.resourceChanges)}`,
    );
    const outputs = Object.fromEntries(Object.entries(resync.outputs).map(([k, v]) => [k, v.value]));
    say(
      `    syncedFrom ${outputs.syncedFrom}, generation ${outputs.generation}, staging uuid ${outputs.stagingUuid}`,
    );
    say(`    restoredFields ${(outputs.restoredFields as string[]).join(', ')}`);
    const destroyed = await example.stack.destroy();
    say(`$ pulumi destroy     → ${changes(destroyed.summary.resourceChanges)}`);
    return {
      cli: version,
      up: first.summary.resourceChanges,
      upAgain: again.summary.resourceChanges,
      newSnapshot: resync.summary.resourceChanges,
      outputs,
      destroy: destroyed.summary.resourceChanges,
    };
  } finally {
    example.dispose();
    await agent.stop();
  }
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  const keep = process.env.SNAPSYNC_DEMO_DIR;
  const dir = keep ?? fs.mkdtempSync(path.join(os.tmpdir(), 'snapsync-demo-'));
  const poolDir = path.join(dir, 'pool');
  const tokenFile = path.join(dir, 'token');
  if (keep) fs.rmSync(poolDir, { recursive: true, force: true });
  const say = (line: string) => json || console.log(line);
  let agent: Agent | null = null;
  try {
    const cli = agentCli(tokenFile, () => url);
    let url = '';
    const pool = cli('init', '--pool', poolDir, '--token-file', tokenFile);
    say(
      `$ snapsync-agent init --pool ${poolDir}            → pool ${pool.uuid}, block size ${pool.blockSize / 1024} KiB`,
    );
    agent = await serve(poolDir, tokenFile, dir);
    url = agent.url;
    say(`$ snapsync-agent serve --pool … --listen 127.0.0.1:0 → ${url}`);

    const configFile = (vm: string) => path.join(dir, `${vm}.vmx`);
    for (const [vm, uuid, mac, fill, network] of VMS) {
      fs.writeFileSync(configFile(vm), vmx(vm, uuid, mac, network));
      cli('create', `${vm}-config`, '--type', 'file');
      cli('write', `${vm}-config`, '0', '--file', configFile(vm));
      for (const disk of ['disk0', 'disk1']) {
        cli('create', `${vm}-${disk}`, '--type', 'vdisk', '--size', '64M');
        const image = path.join(dir, `${vm}-${disk}.img`);
        fs.writeFileSync(image, Buffer.alloc(8 * MiB, fill));
        cli('write', `${vm}-${disk}`, '0', '--file', image);
      }
      cli(
        'create',
        vm,
        '--type',
        'vm',
        '--label',
        `env=${vm.split('-')[0]}`,
        '--member',
        `config=${vm}-config`,
        '--member',
        `disk0=${vm}-disk0`,
        '--member',
        `disk1=${vm}-disk1`,
      );
      say(
        `$ snapsync-agent create ${vm} --type vm --member config=… disk0=… disk1=…  (8 MiB written per disk)`,
      );
    }
    const snapshot = cli('snapshot', 'prod-web', 'nightly-2026-11-24');
    say(
      `$ snapsync-agent snapshot prod-web nightly-2026-11-24 → covers ${Object.keys(snapshot.members).join(', ')}`,
    );
    const before = cli('info');
    const started = process.hrtime.bigint();
    const sync = cli('sync', 'staging-web', 'prod-web@nightly-2026-11-24');
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const after = cli('info');
    const disk0 = cli('read', 'staging-web-disk0', '0', '16');
    const configSize = cli('describe', 'staging-web-config').size;
    const config = Buffer.from(
      cli('read', 'staging-web-config', '0', String(configSize)).base64,
      'base64',
    ).toString();
    const report = {
      url,
      snapshot: `prod-web@${snapshot.name}`,
      sync: {
        target: sync.target.name,
        targetUuid: sync.target.uuid,
        generation: sync.generation,
        members: sync.members,
        safetySnapshot: sync.safetySnapshot && `${sync.safetySnapshot.container}@${sync.safetySnapshot.name}`,
        cliMilliseconds: Math.round(ms),
        metadataEntries: sync.metadataEntries,
        blocksWrittenForIdentity: after.usedBlocks - before.usedBlocks, // only the copy-on-write blocks the identity restore wrote
        identity: sync.identity,
      },
      after: {
        stagingDisk0Reads: Buffer.from(disk0.base64, 'base64').toString(),
        stagingLabels: cli('describe', 'staging-web').labels,
        stagingConfigDisplayName: config.split('\n').find((l) => l.startsWith('displayName')) ?? '',
        stagingConfigReferences: config
          .split('\n')
          .filter((l) => /^(scsi0:\d\.fileName|ethernet0\.networkName)/.test(l)),
        usage: cli('usage', 'staging-web'),
      },
      fsck: cli('fsck'),
    };
    say(`$ snapsync-agent sync staging-web prod-web@nightly-2026-11-24`);
    for (const m of sync.members) say(`    ${String(m.role).padEnd(7)} ${m.container} now reads ${m.source}`);
    say(
      `    ${report.sync.metadataEntries} metadata entries, ${report.sync.blocksWrittenForIdentity} block(s) written to restore identity, no data copied (${report.sync.cliMilliseconds} ms with the CLI's start-up)`,
    );
    say(`    undo with: snapsync-agent revert staging-web ${sync.safetySnapshot.name}`);
    if (sync.identity) {
      for (const f of sync.identity.fields) say(`    kept ${f.path} = ${f.value} (${f.status})`);
      // References: staging's own disk files and network, whatever production's config said.
      for (const r of sync.identity.references ?? [])
        say(`    kept ${r.path} = ${r.value} (${r.status}; production's: ${r.sourceValue})`);
    } else say('    identity: no profiles ran');
    say(
      `after: staging-web-disk0 reads "${report.after.stagingDisk0Reads}" (production's data), labels ${JSON.stringify(report.after.stagingLabels)}`,
    );
    say(`       staging config: ${report.after.stagingConfigDisplayName}`);
    for (const line of report.after.stagingConfigReferences) say(`                       ${line}`);
    const u = report.after.usage;
    say(
      `       usage: ${(u.logicalBytes / MiB).toFixed(1)} MiB logical, ${(u.mappedBytes / MiB).toFixed(1)} MiB mapped, ${(u.sharedBytes / MiB).toFixed(1)} MiB shared with production`,
    );
    say(`$ snapsync-agent fsck → ${report.fsck.ok ? 'clean' : `${report.fsck.problems.length} problem(s)`}`);
    if (!report.fsck.ok) process.exitCode = 1;

    const pulumi = findPulumiCli();
    const pulumiReport = pulumi ? await pulumiSection(pulumi, dir, say) : null;
    if (!pulumi) {
      say(
        '\n(no Pulumi CLI on the PATH: `make e2e` builds one; with SNAPSYNC_PULUMI=/path/to/pulumi this demo',
      );
      say(' also runs examples/refresh-staging with `pulumi up`, a re-sync and `pulumi destroy`)');
    }
    if (json) console.log(JSON.stringify({ ...report, pulumi: pulumiReport }, null, 2));
  } finally {
    await agent?.stop();
    if (!keep) fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(String(err?.message ?? err));
  process.exit(1);
});
