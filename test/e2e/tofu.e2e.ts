/**
 * The Terraform/OpenTofu provider with the real `tofu` (built by
 * scripts/build-tofu-cli.sh, passed in SNAPSYNC_TOFU) and, when
 * SNAPSYNC_TERRAFORM is set, Terraform v1.5.7 (scripts/build-terraform-cli.sh)
 * against a real agent: the CLI finds bin/terraform-provider-snapsync through
 * `dev_overrides` in a TF_CLI_CONFIG_FILE (no registry, no `init`), as a user
 * runs it. Lifecycle, drift, import of every resource (`import` and `import {}`
 * blocks), timeouts and Ctrl-C against a paused agent. `make e2e`.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AgentClient } from '../../agent/client/client';
import { type AgentProcess, agentCli, startAgentProcess } from '../helpers/agent-process';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { cliBinary, hclClis, type Interrupted, PROVIDER_HCL, tofuRunner, writeTofuRc } from './helpers/tofu';

const MiB = 1 << 20;

/** The provider block every configuration here starts with. */
const PROVIDER = PROVIDER_HCL;

function config(snapshotName: string, diskSettings = ''): string {
  return `${PROVIDER}
resource "snapsync_container" "disk" {
  name   = "tofu-disk"
  type   = "vdisk"
  size   = ${8 * MiB}
  labels = { env = "staging" }
  ${diskSettings}
}

resource "snapsync_snapshot" "nightly" {
  container = snapsync_container.disk.name
  name      = "${snapshotName}"
}

resource "snapsync_container" "staging" {
  name = "tofu-staging"
  type = "vdisk"
  size = ${8 * MiB}
}

resource "snapsync_sync_from_snapshot" "refresh" {
  target   = snapsync_container.staging.name
  snapshot = snapsync_snapshot.nightly.ref
}
`;
}

/** A second configuration: the latest nightly found by the \`snapsync_snapshots\` data source, synced to a copy. */
const LATEST_NIGHTLY = `${PROVIDER}
data "snapsync_snapshots" "nightlies" {
  container = "tofu-disk"
  labels    = { kind = "nightly" }
}

resource "snapsync_container" "copy" {
  name = "tofu-copy"
  type = "vdisk"
  size = ${8 * MiB}
}

resource "snapsync_sync_from_snapshot" "latest" {
  target   = snapsync_container.copy.name
  snapshot = data.snapsync_snapshots.nightlies.latest.ref
}

output "latest" {
  value = data.snapsync_snapshots.nightlies.latest.ref
}
`;

/** A VM cloned from a golden image whose config names a network: the clone must be given its own. */
function vmCloneConfig(referenceMap: string): string {
  return `${PROVIDER}
resource "snapsync_container" "dev" {
  name          = "tofu-dev-web"
  type          = "vm"
  from_snapshot = "tofu-golden@golden"
  ${referenceMap}
}

output "network" {
  value = [for r in snapsync_container.dev.references : r.value if r.path == "config.ethernet0.networkName"]
}
`;
}

const GOLDEN_VMX = [
  '.encoding = "UTF-8"',
  'scsi0:0.fileName = "tofu-golden-disk0.vmdk"',
  'ethernet0.networkName = "build-net"',
  'ethernet0.addressType = "generated"',
  'ethernet0.generatedAddress = "00:0c:29:4a:7b:01"',
  '',
].join('\n');

/** Two disks declared larger and smaller than production's 8 MiB, both synced from its nightly. */
const SIZED_TARGETS = `${PROVIDER}
resource "snapsync_container" "target" {
  for_each = { larger = ${16 * MiB}, smaller = ${4 * MiB} }
  name     = "tofu-\${each.key}"
  type     = "vdisk"
  size     = each.value
}

resource "snapsync_sync_from_snapshot" "target" {
  for_each = snapsync_container.target
  target   = each.value.name
  snapshot = "tofu-disk@nightly-2"
}
`;

/** A vdisk declaring 100 GiB on the agent's 1 GiB pool (thin provisioning beyond capacity). */
const OVERCOMMITTED = `${PROVIDER}
resource "snapsync_container" "big" {
  name = "tofu-big"
  type = "vdisk"
  size = ${100 * 2 ** 30}
}
`;

/** The import {} blocks for the three resources of \`config\` (the ids as the README lists them). */
const IMPORTS = `
import {
  to = snapsync_container.disk
  id = "tofu-disk"
}

import {
  to = snapsync_snapshot.nightly
  id = "tofu-disk@nightly-2"
}

import {
  to = snapsync_sync_from_snapshot.refresh
  id = "tofu-staging"
}
`;

/** One container, with \`extra\` (a timeouts block) in its resource block. */
function interruptedConfig(extra: string): string {
  return `${PROVIDER}
resource "snapsync_container" "int" {
  name = "tofu-int"
  type = "vdisk"
  size = ${MiB}
  ${extra}
}
`;
}

/** The resources a state file in \`dir\` records (none without a state file). */
function stateResources(dir: string): unknown[] {
  const file = path.join(dir, 'terraform.tfstate');
  return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')).resources : [];
}

/** Every file under dir (state, backups, plan files, logs), as text. */
function filesUnder(dir: string): Array<[string, string]> {
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true }).flatMap((entry) => {
    if (!entry.isFile()) return [];
    const file = path.join(entry.parentPath, entry.name);
    return [[file, fs.readFileSync(file, 'latin1')] as [string, string]];
  });
}

for (const hcl of hclClis()) {
  describe(`${hcl.name} CLI end to end: containers, a snapshot and a sync`, function () {
    this.timeout(600_000);
    let agent: AgentProcess;
    let work: string;
    const transcript: string[] = [];
    const cli = (...args: string[]) => agentCli(agent)(...args);
    /** A change made outside tofu, as an operator would. */
    const byHand = async (change: (client: AgentClient) => Promise<unknown>) => {
      const client = await AgentClient.connect(agent.url, { token: agent.token });
      try {
        await change(client);
      } finally {
        await client.close();
      }
    };

    const { tofu, ok, interrupt } = tofuRunner(
      () => cliBinary(hcl),
      () => work,
      () => ({
        TF_VAR_url: agent.url,
        TF_LOG: 'trace',
        TF_LOG_PATH: path.join(work, 'tofu.log'),
        SNAPSYNC_URL: '',
        SNAPSYNC_TOKEN: agent.token,
      }),
      transcript,
    );

    before(async () => {
      cliBinary(hcl);
      agent = await startAgentProcess();
      work = tempDir('snapsync-tofu-');
      writeTofuRc(work);
      fs.writeFileSync(path.join(work, 'main.tf'), config('nightly-1'));
    });
    after(async () => {
      await agent?.stop();
      cleanupTempDirs();
    });

    it('apply creates the container and the snapshot on the agent', () => {
      const out = ok('apply', '-auto-approve');
      assert.match(out, /Apply complete! Resources: 4 added, 0 changed, 0 destroyed/);
      const disk = cli('describe', 'tofu-disk');
      assert.equal(disk.type, 'vdisk');
      assert.equal(disk.size, 8 * MiB);
      assert.deepEqual(disk.labels, { env: 'staging' });
      const state = JSON.parse(fs.readFileSync(path.join(work, 'terraform.tfstate'), 'utf8'));
      const container = state.resources.find((r: { type: string }) => r.type === 'snapsync_container');
      assert.equal(container.instances[0].attributes.uuid, disk.uuid);
    });

    it('a second plan is empty (-detailed-exitcode 0)', () => {
      const r = tofu('plan', '-detailed-exitcode');
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /No changes/);
    });

    it('a new snapshot name replaces the snapshot and re-syncs in place', () => {
      fs.writeFileSync(path.join(work, 'main.tf'), config('nightly-2'));
      const r = tofu('plan', '-detailed-exitcode', '-out', 'next.plan');
      assert.equal(r.status, 2, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /snapsync_snapshot\.nightly must be replaced/);
      assert.match(r.stdout, /snapsync_sync_from_snapshot\.refresh will be updated in-place/);
      assert.match(r.stdout, /Plan: 1 to add, 1 to change, 1 to destroy/);
      ok('apply', 'next.plan');
      assert.equal(cli('describe', 'tofu-disk').type, 'vdisk');
    });

    it('a re-sync by hand with the agent CLI shows as drift in plan -refresh-only; apply converges', () => {
      cli('snapshot', 'tofu-disk', 'manual');
      cli('sync', 'tofu-staging', 'tofu-disk@manual');
      const refresh = tofu('plan', '-refresh-only', '-detailed-exitcode');
      assert.equal(refresh.status, 2, `${refresh.stdout}\n${refresh.stderr}`);
      assert.match(refresh.stdout, /in_sync\s+= true -> false/);
      assert.match(refresh.stdout, /no longer descends from tofu-disk@nightly-2/);
      const plan = tofu('plan', '-detailed-exitcode');
      assert.equal(plan.status, 2, `${plan.stdout}\n${plan.stderr}`);
      assert.match(plan.stdout, /snapsync_sync_from_snapshot\.refresh will be updated in-place/);
      ok('apply', '-auto-approve');
      assert.equal(tofu('plan', '-detailed-exitcode').status, 0);
    });

    it('a snapshot deleted by hand is taken again by apply, and the same apply re-syncs staging to it', () => {
      cli('rm', 'tofu-disk@nightly-2'); // hidden, not gone: staging still reads it
      cli('write', 'tofu-disk', '0', '--text', 'taken again');
      const plan = tofu('plan', '-detailed-exitcode');
      assert.equal(plan.status, 2, `${plan.stdout}\n${plan.stderr}`);
      assert.match(plan.stdout, /snapsync_sync_from_snapshot\.refresh will be updated in-place/);
      assert.match(ok('apply', '-auto-approve'), /Resources: 1 added, 1 changed, 0 destroyed/);
      assert.equal(
        Buffer.from(cli('read', 'tofu-staging', '0', '11').base64, 'base64').toString(),
        'taken again',
      );
      const attributes = (type: string) =>
        (
          stateResources(work) as Array<{
            type: string;
            instances: Array<{ attributes: Record<string, unknown> }>;
          }>
        ).find((r) => r.type === type)!.instances[0]!.attributes;
      const sync = attributes('snapsync_sync_from_snapshot');
      assert.equal(sync.source_snapshot_uuid, attributes('snapsync_snapshot').uuid);
      assert.equal(sync.in_sync, true);
      assert.equal(tofu('plan', '-detailed-exitcode').status, 0);
    });

    it('a snapshot deleted and taken again by hand under its name: the plan changes it (no create), one apply re-syncs staging to it', () => {
      cli('rm', 'tofu-disk@nightly-2');
      cli('write', 'tofu-disk', '0', '--text', 'by hand now');
      const retaken = cli('snapshot', 'tofu-disk', 'nightly-2');
      const plan = tofu('plan', '-detailed-exitcode');
      assert.equal(plan.status, 2, `${plan.stdout}\n${plan.stderr}`);
      assert.doesNotMatch(plan.stdout, /snapsync_snapshot\.nightly (has been deleted|will be created)/);
      assert.match(plan.stdout, /snapsync_sync_from_snapshot\.refresh will be updated in-place/);
      assert.match(plan.stdout, /Plan: 0 to add, 1 to change, 0 to destroy/);
      assert.match(ok('apply', '-auto-approve'), /Resources: 0 added, 1 changed, 0 destroyed/);
      assert.equal(
        Buffer.from(cli('read', 'tofu-staging', '0', '11').base64, 'base64').toString(),
        'by hand now',
      );
      const snapshot = (
        stateResources(work) as Array<{
          type: string;
          instances: Array<{ attributes: Record<string, unknown> }>;
        }>
      ).find((r) => r.type === 'snapsync_snapshot')!.instances[0]!.attributes;
      assert.equal(snapshot.uuid, retaken.uuid, 'the resource is the snapshot the name holds now');
      assert.equal(tofu('plan', '-detailed-exitcode').status, 0);
    });

    it('labels changed by hand show as drift and the next apply converges', async () => {
      await byHand((agent) =>
        agent.call('setLabels', { container: 'tofu-disk', labels: { env: 'tampered' } }),
      );
      const r = tofu('plan', '-detailed-exitcode');
      assert.equal(r.status, 2, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /snapsync_container\.disk will be updated in-place/);
      ok('apply', '-auto-approve');
      assert.deepEqual(cli('describe', 'tofu-disk').labels, { env: 'staging' });
      assert.equal(tofu('plan', '-detailed-exitcode').status, 0);
    });

    it("an agent's refusal reaches the user as a diagnostic naming the resource and the code", async () => {
      // Grown by hand: converging would shrink it, which the agent refuses without allow_shrink.
      await byHand((agent) =>
        agent.call('resize', { container: 'tofu-disk', size: 16 * MiB, shrink: false }),
      );
      const r = tofu('apply', '-auto-approve');
      assert.equal(r.status, 1, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stderr, /Error: snapsync_container "tofu-disk": resize failed \[INVALID_ARGUMENT\]/);
      assert.match(r.stderr, /with snapsync_container\.disk/);
      // The way out is the resource's own setting, not the agent CLI's flag.
      assert.match(r.stderr.replace(/\s+/g, ' '), /set `allow_shrink = true` on this resource/);
      assert.doesNotMatch(r.stderr, /--shrink|shrink: true/);
      await byHand((agent) => agent.call('resize', { container: 'tofu-disk', size: 8 * MiB, shrink: true }));
      assert.equal(tofu('plan', '-detailed-exitcode').status, 0);
    });

    it('a disk grown by hand beyond its declared size fails the plan with the refusal the apply would meet, and its hint', async () => {
      await byHand((agent) =>
        agent.call('resize', { container: 'tofu-disk', size: 16 * MiB, shrink: false }),
      );
      const r = tofu('plan', '-detailed-exitcode');
      assert.equal(r.status, 1, `${r.stdout}\n${r.stderr}`);
      assert.doesNotMatch(r.stdout, /will be updated in-place/);
      assert.match(r.stderr, /Error: snapsync_container "tofu-disk": resize failed \[INVALID_ARGUMENT\]/);
      assert.match(r.stderr, /with snapsync_container\.disk/);
      const said = r.stderr.replace(/\s+/g, ' ');
      assert.match(said, /shrinking "tofu-disk" from 16777216 to 8388608 bytes discards data/);
      assert.match(said, /set `allow_shrink = true` on this resource/);
      await byHand((agent) => agent.call('resize', { container: 'tofu-disk', size: 8 * MiB, shrink: true }));
      assert.equal(tofu('plan', '-detailed-exitcode').status, 0);
    });

    it('tofu import of an existing container, then the plan is empty', () => {
      const uuid = cli('describe', 'tofu-disk').uuid;
      ok('state', 'rm', 'snapsync_container.disk');
      assert.match(ok('import', 'snapsync_container.disk', 'tofu-disk'), /Import successful/);
      const state = JSON.parse(fs.readFileSync(path.join(work, 'terraform.tfstate'), 'utf8'));
      const container = state.resources.find((r: { type: string }) => r.type === 'snapsync_container');
      assert.equal(container.instances[0].attributes.id, uuid);
      const r = tofu('plan', '-detailed-exitcode');
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    });

    it('tofu import of the snapshot (container@name) and the sync (its target), then the plan is empty', () => {
      ok('state', 'rm', 'snapsync_snapshot.nightly', 'snapsync_sync_from_snapshot.refresh');
      assert.match(ok('import', 'snapsync_snapshot.nightly', 'tofu-disk@nightly-2'), /Import successful/);
      assert.match(ok('import', 'snapsync_sync_from_snapshot.refresh', 'tofu-staging'), /Import successful/);
      const state = JSON.parse(fs.readFileSync(path.join(work, 'terraform.tfstate'), 'utf8'));
      const sync = state.resources.find((r: { type: string }) => r.type === 'snapsync_sync_from_snapshot');
      assert.equal(sync.instances[0].attributes.snapshot, 'tofu-disk@nightly-2');
      assert.equal(sync.instances[0].attributes.generation, cli('describe', 'tofu-staging').generation);
      const r = tofu('plan', '-detailed-exitcode');
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    });

    it('import {} blocks adopt the container, the snapshot and the sync; then the plan is empty', () => {
      ok(
        'state',
        'rm',
        'snapsync_container.disk',
        'snapsync_snapshot.nightly',
        'snapsync_sync_from_snapshot.refresh',
      );
      fs.writeFileSync(path.join(work, 'imports.tf'), IMPORTS);
      const plan = ok('plan', '-out', 'import.plan');
      assert.match(plan, /Plan: 3 to import, 0 to add, 0 to change, 0 to destroy/);
      assert.match(
        ok('apply', 'import.plan'),
        /Apply complete! Resources: 3 imported, 0 added, 0 changed, 0 destroyed/,
      );
      fs.rmSync(path.join(work, 'imports.tf'));
      const r = tofu('plan', '-detailed-exitcode');
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    });

    it('data "snapsync_snapshots" finds the latest nightly by label, and a sync uses its ref', async () => {
      await byHand(async (agent) => {
        await agent.call('snapshot', { container: 'tofu-disk', name: 'n-old', labels: { kind: 'nightly' } });
        await agent.call('snapshot', { container: 'tofu-disk', name: 'n-new', labels: { kind: 'nightly' } });
        await agent.call('snapshot', { container: 'tofu-disk', name: 'adhoc', labels: { kind: 'manual' } });
      });
      const dir = path.join(work, 'latest-nightly');
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'main.tf'), LATEST_NIGHTLY);
      const chdir = `-chdir=${dir}`;
      const out = ok(chdir, 'apply', '-auto-approve');
      assert.match(out, /Apply complete! Resources: 2 added, 0 changed, 0 destroyed/);
      assert.match(out, /latest = "tofu-disk@n-new"/);
      const state = JSON.parse(fs.readFileSync(path.join(dir, 'terraform.tfstate'), 'utf8'));
      const sync = state.resources.find((r: { type: string }) => r.type === 'snapsync_sync_from_snapshot');
      assert.equal(sync.instances[0].attributes.snapshot, 'tofu-disk@n-new');
      const data = state.resources.find((r: { mode: string }) => r.mode === 'data');
      assert.deepEqual(
        data.instances[0].attributes.snapshots.map((s: { name: string }) => s.name),
        ['n-new', 'n-old'],
      );
      const again = tofu(chdir, 'plan', '-detailed-exitcode');
      assert.equal(again.status, 0, `${again.stdout}\n${again.stderr}`);
      const missing = LATEST_NIGHTLY.replace('container = "tofu-disk"', 'container = "tofu-nothing"');
      fs.writeFileSync(path.join(dir, 'main.tf'), missing);
      const refused = tofu(chdir, 'plan');
      assert.equal(refused.status, 1, `${refused.stdout}\n${refused.stderr}`);
      assert.match(refused.stderr, /snapsync_snapshots "tofu-nothing".*\[NOT_FOUND\]/);
      fs.writeFileSync(path.join(dir, 'main.tf'), LATEST_NIGHTLY);
      assert.match(ok(chdir, 'destroy', '-auto-approve'), /Resources: 2 destroyed/);
      await byHand(async (agent) => {
        for (const name of ['n-old', 'n-new', 'adhoc'])
          await agent.call('deleteSnapshot', { snapshot: `tofu-disk@${name}` });
      });
    });

    it("a VM clone whose config names a network: refused until reference_map maps it, then created with the clone's own", async () => {
      await byHand(async (agent) => {
        await agent.call('createContainer', { name: 'tofu-golden-config', type: 'file', labels: {} });
        await agent.write('tofu-golden-config', 0, Buffer.from(GOLDEN_VMX));
        await agent.call('createContainer', {
          name: 'tofu-golden-disk0',
          type: 'vdisk',
          size: MiB,
          labels: {},
        });
        await agent.call('createContainer', { name: 'tofu-golden', type: 'vm', labels: {} });
        await agent.call('addMember', { vm: 'tofu-golden', role: 'config', member: 'tofu-golden-config' });
        await agent.call('addMember', { vm: 'tofu-golden', role: 'disk0', member: 'tofu-golden-disk0' });
        await agent.call('snapshot', { container: 'tofu-golden', name: 'golden' });
      });
      const dir = path.join(work, 'vm-clone');
      fs.mkdirSync(dir);
      const chdir = `-chdir=${dir}`;
      fs.writeFileSync(path.join(dir, 'main.tf'), vmCloneConfig(''));
      const refused = tofu(chdir, 'apply', '-auto-approve');
      assert.equal(refused.status, 1, `${refused.stdout}\n${refused.stderr}`);
      assert.match(
        refused.stderr,
        /snapsync_container "tofu-dev-web": clone failed \[IDENTITY_REFERENCE_UNMAPPED\]/,
      );
      // The CLI wraps the detail: compare it as one line.
      assert.match(
        refused.stderr.replace(/\s+/g, ' '),
        /`reference_map = \{ "SRC" = "DST" \}` on this resource/,
      );
      assert.equal(
        cli('ls').some((c: { name: string }) => c.name === 'tofu-dev-web'),
        false,
        'nothing cloned',
      );

      fs.writeFileSync(
        path.join(dir, 'main.tf'),
        vmCloneConfig('reference_map = { "build-net" = "dev-net" }'),
      );
      const out = ok(chdir, 'apply', '-auto-approve');
      assert.match(out, /Apply complete! Resources: 1 added/);
      assert.match(out, /network = \[\s*"dev-net",?\s*\]/);
      const config = cli('describe', 'tofu-dev-web').members.config;
      const text = Buffer.from(
        cli('read', config, '0', String(cli('describe', config).size)).base64,
        'base64',
      ).toString();
      assert.match(text, /ethernet0\.networkName = "dev-net"/);
      assert.match(text, /scsi0:0\.fileName = "tofu-dev-web-disk0\.vmdk"/);
      const again = tofu(chdir, 'plan', '-detailed-exitcode');
      assert.equal(again.status, 0, `${again.stdout}\n${again.stderr}`);
      assert.match(ok(chdir, 'destroy', '-auto-approve'), /Resources: 1 destroyed/);
      assert.deepEqual(
        cli('ls').filter((c: { name: string }) => c.name.startsWith('tofu-dev-web')),
        [],
        "the clone's members go with it",
      );
      await byHand(async (agent) => {
        // Deleting the VM may take its members with it: what is left goes after.
        for (const name of ['tofu-golden', 'tofu-golden-config', 'tofu-golden-disk0'])
          if ((await agent.call('listContainers', {})).some((c) => c.name === name))
            await agent.call('deleteContainer', { container: name, recursive: true });
      });
    });

    it("a disk declared larger or smaller than its sync's source takes the source's size, and the next plan is empty", () => {
      const dir = path.join(work, 'sized-targets');
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'main.tf'), SIZED_TARGETS);
      const chdir = `-chdir=${dir}`;
      assert.match(ok(chdir, 'apply', '-auto-approve'), /Resources: 4 added, 0 changed, 0 destroyed/);
      assert.equal(cli('describe', 'tofu-larger').size, 8 * MiB, "a sync gives the source's size");
      assert.equal(cli('describe', 'tofu-smaller').size, 8 * MiB);
      // No resize back after every sync (nor a shrink refused forever for the smaller one).
      const again = tofu(chdir, 'plan', '-detailed-exitcode');
      assert.equal(again.status, 0, `${again.stdout}\n${again.stderr}`);
      assert.match(ok(chdir, 'destroy', '-auto-approve'), /Resources: 4 destroyed/);
    });

    it("a vdisk declared beyond the pool's capacity is created, with an OVERCOMMITTED warning naming it", () => {
      const dir = path.join(work, 'overcommitted');
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'main.tf'), OVERCOMMITTED);
      const chdir = `-chdir=${dir}`;
      const apply = tofu(chdir, 'apply', '-auto-approve');
      assert.equal(apply.status, 0, apply.stdout + apply.stderr);
      const out = apply.stdout + apply.stderr;
      assert.match(out, /Resources: 1 added, 0 changed, 0 destroyed/);
      assert.match(out, /Warning: snapsync_container "tofu-big": \[OVERCOMMITTED\]/);
      assert.match(out, /declare 10\d\.\d GiB on 1\.0 GiB of capacity/);
      assert.match(ok(chdir, 'destroy', '-auto-approve'), /Resources: 1 destroyed/);
    });

    it('timeouts { create } against a hung agent: the apply fails naming the resource and the limit; nothing is recorded', () => {
      const dir = path.join(work, 'interrupted');
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'main.tf'), interruptedConfig('timeouts {\n    create = "2s"\n  }'));
      agent.pause(true);
      try {
        const r = tofu(`-chdir=${dir}`, 'apply', '-auto-approve');
        assert.equal(r.status, 1, `${r.stdout}\n${r.stderr}`);
        assert.match(
          r.stderr,
          /Error: snapsync_container "tofu-int": create timed out after 2s \(timeouts\.create\) \[TIMEOUT\]/,
        );
        assert.match(r.stderr, /Nothing had been sent to the agent/);
      } finally {
        agent.pause(false);
      }
      assert.deepEqual(stateResources(dir), []);
      assert.equal(
        cli('ls').some((c: { name: string }) => c.name === 'tofu-int'),
        false,
      );
    });

    it('Ctrl-C during apply: the CLI sends StopProvider, the create stops with a diagnostic, nothing half done; apply then converges', async () => {
      const dir = path.join(work, 'interrupted');
      fs.writeFileSync(path.join(dir, 'main.tf'), interruptedConfig(''));
      agent.pause(true);
      let r: Interrupted;
      try {
        r = await interrupt([`-chdir=${dir}`, 'apply', '-auto-approve'], /Creating\.\.\./);
      } finally {
        agent.pause(false);
      }
      const output = `${r.stdout}\n${r.stderr}`;
      assert.ok(r.interrupted, output);
      assert.equal(r.status, 1, output);
      assert.match(output, /Interrupt received/);
      assert.match(output, /Error: snapsync_container "tofu-int": create stopped \[STOPPED\]/);
      assert.deepEqual(stateResources(dir), []);
      assert.equal(
        cli('ls').some((c: { name: string }) => c.name === 'tofu-int'),
        false,
      );
      assert.match(ok(`-chdir=${dir}`, 'apply', '-auto-approve'), /Resources: 1 added/);
      assert.equal(tofu(`-chdir=${dir}`, 'plan', '-detailed-exitcode').status, 0);
      assert.match(ok(`-chdir=${dir}`, 'destroy', '-auto-approve'), /Resources: 1 destroyed/);
    });

    it('destroy refuses to delete a container with snapshots taken by hand, naming them; delete_snapshots = true deletes them with it', () => {
      cli('snapshot', 'tofu-disk', 'before-upgrade-keep');
      const plan = tofu('plan', '-destroy');
      assert.equal(plan.status, 0, `${plan.stdout}\n${plan.stderr}`);
      const refused = tofu('destroy', '-auto-approve');
      assert.equal(refused.status, 1, `${refused.stdout}\n${refused.stderr}`);
      assert.match(
        refused.stderr.replace(/\s+/g, ' '),
        /snapsync_container "tofu-disk": delete failed \[HAS_DEPENDENTS\] .*tofu-disk@before-upgrade-keep.*delete_snapshots = true/,
      );
      const kept = cli('snapshots', 'tofu-disk').map((s: { name: string }) => s.name);
      assert.ok(kept.includes('before-upgrade-keep'), `the hand-made snapshot is kept: ${kept}`);
      fs.writeFileSync(path.join(work, 'main.tf'), config('nightly-2', 'delete_snapshots = true'));
      ok('apply', '-auto-approve');
    });

    it('destroy leaves no container, fsck clean', () => {
      const out = ok('destroy', '-auto-approve');
      assert.match(out, /Destroy complete! Resources: 4 destroyed/);
      assert.equal(
        cli('ls').some((c: { name: string }) => c.name.startsWith('tofu-')),
        false,
      );
      assert.equal(cli('fsck').ok, true);
    });

    it('apply after destroy builds everything again, and destroy again', () => {
      assert.match(ok('apply', '-auto-approve'), /Resources: 4 added, 0 changed, 0 destroyed/);
      assert.equal(cli('describe', 'tofu-disk').size, 8 * MiB);
      assert.match(ok('destroy', '-auto-approve'), /Resources: 4 destroyed/);
      assert.equal(cli('fsck').ok, true);
    });

    it('the token is in no state file, plan file, log or output', () => {
      const holding = filesUnder(work)
        .filter(([, text]) => text.includes(agent.token))
        .map(([file]) => path.relative(work, file));
      assert.deepEqual(holding, []);
      assert.ok(fs.existsSync(path.join(work, 'tofu.log')), 'TF_LOG=trace wrote a log');
      assert.equal(
        transcript.some((t) => t.includes(agent.token)),
        false,
      );
    });
  });
}
