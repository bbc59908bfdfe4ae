/**
 * A staging VM declared with fewer roles than production (production gained a
 * disk), synced to production's snapshot, with the real `tofu` (and Terraform
 * when SNAPSYNC_TERRAFORM is set) and the real Pulumi CLI. The sync gives
 * staging a member `<vm>-<role>` for the missing role; that member is the
 * sync's, not the declaration's: the next plan/refresh shows no drift, a
 * re-sync works, and destroy deletes it with the VM (or its revert does), so
 * nothing of the stack stays in the pool (hidden snapshots included). A
 * declared member deleted by hand is made, re-added and re-synced by one apply
 * (the plan leaves the VM's parent_snapshot unknown: re-adding changes it).
 * Member names are not `<vm>-<role>`. `make e2e`.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createExampleStack, type ExampleStack, findPulumiCli } from '../../examples/demo/pulumi-stack';
import { type AgentProcess, agentCli, startAgentProcess } from '../helpers/agent-process';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { cliBinary, hclClis, PROVIDER_HCL, tofuRunner, writeTofuRc } from './helpers/tofu';

const REPO = path.resolve(__dirname, '../..');
const MiB = 1 << 20;
type AgentCli = ReturnType<typeof agentCli>;

function hclConfig(snapshotName: string): string {
  return `${PROVIDER_HCL}
resource "snapsync_container" "prod_sys" {
  name = "vr-prod-sys"
  type = "vdisk"
  size = ${MiB}
}
resource "snapsync_container" "prod_logs" {
  name = "vr-prod-logs"
  type = "vdisk"
  size = ${MiB}
}
resource "snapsync_container" "prod" {
  name    = "vr-prod"
  type    = "vm"
  members = { root = snapsync_container.prod_sys.name, logs = snapsync_container.prod_logs.name }
}
resource "snapsync_container" "stg_sys" {
  name = "vr-stg-system"
  type = "vdisk"
  size = ${MiB}
}
resource "snapsync_container" "stg" {
  name    = "vr-stg"
  type    = "vm"
  members = { root = snapsync_container.stg_sys.name }
}
resource "snapsync_snapshot" "nightly" {
  container = snapsync_container.prod.name
  name      = "${snapshotName}"
}
resource "snapsync_sync_from_snapshot" "refresh" {
  target   = snapsync_container.stg.name
  snapshot = snapsync_snapshot.nightly.ref
}
`;
}

/** What a user checks after destroy: no container and no snapshot (hidden ones too) left, fsck clean. */
function assertPoolEmpty(cli: AgentCli): void {
  assert.deepEqual(
    cli('ls').map((c: { name: string }) => c.name),
    [],
  );
  assert.deepEqual(
    cli('snapshots', '--all').map((s: { container: string; name: string }) => `${s.container}@${s.name}`),
    [],
  );
  assert.equal(cli('fsck').ok, true);
}

/** What a user checks after the sync: staging has production's logs disk, as vr-stg-logs, made by the sync. */
function assertSyncedMember(cli: AgentCli): void {
  const stg = cli('describe', 'vr-stg');
  assert.deepEqual(stg.members, { root: 'vr-stg-system', logs: 'vr-stg-logs' });
}

for (const hcl of hclClis()) {
  describe(`${hcl.name} CLI: a staging VM with fewer roles than production`, function () {
    this.timeout(300_000);
    let agent: AgentProcess;
    let work: string;
    const cli = (...args: string[]) => agentCli(agent)(...args);
    const { tofu, ok } = tofuRunner(
      () => cliBinary(hcl),
      () => work,
      () => ({ TF_VAR_url: agent.url, SNAPSYNC_URL: '', SNAPSYNC_TOKEN: agent.token }),
      [],
    );
    const write = (snapshotName: string) =>
      fs.writeFileSync(path.join(work, 'main.tf'), hclConfig(snapshotName));

    before(async () => {
      cliBinary(hcl);
      agent = await startAgentProcess();
      work = tempDir('snapsync-vm-roles-');
      writeTofuRc(work);
      write('n1');
    });
    after(async () => {
      await agent?.stop();
      cleanupTempDirs();
    });

    it('apply syncs; the member the sync created is no drift: the next plan is empty', () => {
      assert.match(ok('apply', '-auto-approve'), /Resources: 7 added, 0 changed, 0 destroyed/);
      assertSyncedMember(cli);
      const plan = tofu('plan', '-detailed-exitcode');
      assert.equal(plan.status, 0, `plan after apply:\n${plan.stdout}${plan.stderr}`);
      assert.deepEqual(
        cli('describe', 'vr-stg').syncCreatedMembers,
        ['logs'],
        'describe says the sync made it',
      );
    });

    it('a new snapshot re-syncs in place (no ALREADY_EXISTS); the plan is empty again', () => {
      write('n2');
      assert.match(ok('apply', '-auto-approve'), /Apply complete!/);
      assertSyncedMember(cli);
      assert.equal(cli('describe', 'vr-stg-logs').parentSnapshot?.container, 'vr-prod-logs');
      const plan = tofu('plan', '-detailed-exitcode');
      assert.equal(plan.status, 0, `plan after the re-sync:\n${plan.stdout}${plan.stderr}`);
    });

    it("a declared member deleted by hand: one apply makes it again, re-adds and re-syncs it (no 'inconsistent result'); the plan is empty", () => {
      cli('rm', 'vr-stg-system', '--detach', '--recursive');
      const plan = tofu('plan');
      const apply = tofu('apply', '-auto-approve');
      assert.equal(apply.status, 0, `apply:\n${apply.stdout}${apply.stderr}`);
      // The VM's parent snapshot is the one all its members descend from: re-adding one changes it.
      assert.match(plan.stdout, /parent_snapshot\s+= "vr-prod@n2" -> \(known after apply\)/);
      assertSyncedMember(cli);
      assert.equal(cli('describe', 'vr-stg-system').parentSnapshot?.container, 'vr-prod-sys');
      const after = tofu('plan', '-detailed-exitcode');
      assert.equal(after.status, 0, `plan after the apply:\n${after.stdout}${after.stderr}`);
    });

    it('destroy deletes the sync-created member with the VM: nothing of the stack stays in the pool', () => {
      assert.match(ok('destroy', '-auto-approve'), /Destroy complete! Resources: 7 destroyed/);
      assertPoolEmpty(cli);
    });
  });
}

describe('pulumi CLI: a staging VM with fewer roles than production', function () {
  this.timeout(300_000);
  const pulumi = findPulumiCli();
  let agent: AgentProcess;
  let example: ExampleStack;
  const cli = (...args: string[]) => agentCli(agent)(...args);

  before(async () => {
    assert.ok(pulumi, 'no Pulumi CLI: run `make e2e` (it builds one) or set SNAPSYNC_PULUMI');
    execFileSync(process.execPath, ['scripts/build-provider.mjs'], { cwd: REPO });
    agent = await startAgentProcess();
    example = await createExampleStack({
      pulumi: pulumi!,
      example: path.join(__dirname, 'vm-roles'),
      agentUrl: agent.url,
      token: agent.token,
      config: { onDelete: 'revert' },
    });
  });
  after(async () => {
    await agent?.stop();
    example?.dispose();
    cleanupTempDirs();
  });

  it('up syncs; refresh finds no drift in the member the sync created; a new snapshot re-syncs', async () => {
    assert.equal((await example.stack.up()).summary.result, 'succeeded');
    assertSyncedMember(cli);
    const refreshed = await example.stack.refresh();
    assert.equal(refreshed.summary.resourceChanges?.update ?? 0, 0, 'refresh finds no drift');
    const preview = await example.stack.preview();
    assert.deepEqual(Object.keys(preview.changeSummary), ['same']);
    await example.stack.setConfig('snapshotName', { value: 'n2' });
    assert.equal((await example.stack.up()).summary.result, 'succeeded');
    assertSyncedMember(cli);
    const again = await example.stack.refresh();
    assert.equal(again.summary.resourceChanges?.update ?? 0, 0, 'refresh after the re-sync finds no drift');
  });

  it('destroy (onDelete revert) leaves nothing of the stack in the pool', async () => {
    assert.equal((await example.stack.destroy()).summary.result, 'succeeded');
    assertPoolEmpty(cli);
  });
});
