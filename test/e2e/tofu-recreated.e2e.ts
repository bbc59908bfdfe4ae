/**
 * The Terraform/OpenTofu provider against objects an operator deleted and made
 * again by hand under their declared names, and against `tofu import` of
 * resources whose configuration spells out defaults or leaves a size unset,
 * with the real `tofu` (and Terraform v1.5.7 when SNAPSYNC_TERRAFORM is set)
 * and a real agent. A container made again as declared is the resource after
 * the refresh (a sync into it re-syncs); one that differs, or a snapshot
 * taken again with other labels, fails the plan naming the way out, never an
 * apply that fails ALREADY_EXISTS for ever.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type AgentProcess, agentCli, startAgentProcess } from '../helpers/agent-process';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { cliBinary, hclClis, PROVIDER_HCL, tofuRunner, writeTofuRc } from './helpers/tofu';

const MiB = 1 << 20;

const CONFIG = `${PROVIDER_HCL}
resource "snapsync_container" "prod" {
  name = "rc-prod"
  type = "vdisk"
  size = ${8 * MiB}
}

resource "snapsync_snapshot" "nightly" {
  container = snapsync_container.prod.name
  name      = "nightly"
  labels    = { purpose = "staging" }
}

resource "snapsync_container" "staging" {
  name   = "rc-staging"
  type   = "vdisk"
  size   = ${8 * MiB}
  labels = { env = "staging" }
}

resource "snapsync_sync_from_snapshot" "refresh" {
  target          = snapsync_container.staging.name
  snapshot        = snapsync_snapshot.nightly.ref
  safety_snapshot = true
}

resource "snapsync_container" "vm" {
  name   = "rc-vm"
  type   = "vm"
  labels = { role = "web" }
}

resource "snapsync_container" "file" {
  name = "rc-file"
  type = "file"
  size = ${MiB}
}

resource "snapsync_container" "scratch" {
  name = "rc-scratch"
  type = "vdisk"
}
`;

type StateResource = {
  type: string;
  name: string;
  instances: Array<{ attributes: Record<string, unknown> }>;
};

for (const hcl of hclClis()) {
  describe(`${hcl.name} CLI end to end: objects deleted and made again by hand, and import of defaults`, function () {
    this.timeout(600_000);
    let agent: AgentProcess;
    let work: string;
    const transcript: string[] = [];
    const cli = (...args: string[]) => agentCli(agent)(...args);
    const { tofu, ok } = tofuRunner(
      () => cliBinary(hcl),
      () => work,
      () => ({ TF_VAR_url: agent.url, SNAPSYNC_URL: '', SNAPSYNC_TOKEN: agent.token }),
      transcript,
    );
    const attributes = (name: string) =>
      (
        JSON.parse(fs.readFileSync(path.join(work, 'terraform.tfstate'), 'utf8')).resources as StateResource[]
      ).find((r) => r.name === name)!.instances[0]!.attributes;
    const read = (container: string, length: number) =>
      Buffer.from(cli('read', container, '0', String(length)).base64, 'base64').toString();
    const noChanges = () => {
      const plan = tofu('plan', '-detailed-exitcode');
      assert.equal(plan.status, 0, `${plan.stdout}\n${plan.stderr}`);
    };

    before(async () => {
      cliBinary(hcl);
      agent = await startAgentProcess();
      work = tempDir('snapsync-tofu-recreated-');
      writeTofuRc(work);
      fs.writeFileSync(path.join(work, 'main.tf'), CONFIG);
    });
    after(async () => {
      await agent?.stop();
      cleanupTempDirs();
    });

    it('apply creates everything; staging holds the nightly', () => {
      // Production's data is written before the apply takes the nightly: staging must end up with it.
      ok('apply', '-auto-approve', '-target=snapsync_container.prod');
      cli('write', 'rc-prod', '0', '--text', 'production');
      assert.match(ok('apply', '-auto-approve'), /Resources: 6 added, 0 changed, 0 destroyed/);
      assert.equal(read('rc-staging', 10), 'production');
      noChanges();
    });

    it('staging deleted and created again by hand as declared: the plan re-syncs it (no create), one apply converges', () => {
      cli('rm', 'rc-staging', '--recursive');
      const again = cli('create', 'rc-staging', '--type', 'vdisk', '--size', '8M', '--label', 'env=staging');
      const plan = tofu('plan', '-detailed-exitcode');
      assert.equal(plan.status, 2, `${plan.stdout}\n${plan.stderr}`);
      assert.doesNotMatch(plan.stdout, /snapsync_container\.staging (has been deleted|will be created)/);
      assert.match(plan.stdout, /snapsync_sync_from_snapshot\.refresh will be updated in-place/);
      assert.match(plan.stdout, /Plan: 0 to add, 1 to change, 0 to destroy/);
      assert.match(ok('apply', '-auto-approve'), /Resources: 0 added, 1 changed, 0 destroyed/);
      assert.equal(read('rc-staging', 10), 'production');
      assert.equal(
        attributes('staging').uuid,
        again.uuid,
        'the resource is the container the name holds now',
      );
      assert.equal(attributes('refresh').target_uuid, again.uuid);
      noChanges();
    });

    it('a VM deleted and created again by hand as declared is the resource: no change planned', () => {
      cli('rm', 'rc-vm');
      const again = cli('create', 'rc-vm', '--type', 'vm', '--label', 'role=web');
      noChanges();
      ok('apply', '-auto-approve');
      assert.equal(attributes('vm').uuid, again.uuid);
    });

    it('staging created again by hand with other attributes: the plan fails naming it and the way out; nothing changes', () => {
      cli('rm', 'rc-staging', '--recursive');
      const handMade = cli('create', 'rc-staging', '--type', 'vdisk', '--size', '4M');
      cli('write', 'rc-staging', '0', '--text', 'hand made');
      for (const command of ['plan', 'apply']) {
        const r = tofu(command, ...(command === 'apply' ? ['-auto-approve'] : []));
        assert.equal(r.status, 1, `${r.stdout}\n${r.stderr}`);
        const error = r.stderr.replace(/\s+/g, ' ');
        assert.match(error, /\[NAME_TAKEN\]/);
        assert.match(error, /"rc-staging" is no longer the container this resource made/);
        assert.match(error, /size: declared 8388608, the agent has 4194304/);
        assert.match(error, /snapsync-agent rm rc-staging/);
        assert.match(error, /tofu import <address> rc-staging/);
        assert.doesNotMatch(r.stdout, /ALREADY_EXISTS|Apply complete/);
      }
      assert.equal(cli('describe', 'rc-staging').uuid, handMade.uuid);
      assert.equal(read('rc-staging', 9), 'hand made');
      // The way out it names: import it; the next apply gives it the declared size and labels and re-syncs.
      ok('state', 'rm', 'snapsync_container.staging');
      assert.match(ok('import', 'snapsync_container.staging', 'rc-staging'), /Import successful/);
      assert.match(ok('apply', '-auto-approve'), /Resources: 0 added, 2 changed, 0 destroyed/);
      assert.equal(cli('describe', 'rc-staging').size, 8 * MiB);
      assert.equal(read('rc-staging', 10), 'production');
      noChanges();
    });

    it('a snapshot taken again by hand with other labels: the plan fails naming it, why and the way out', () => {
      cli('rm', 'rc-prod@nightly');
      cli('snapshot', 'rc-prod', 'nightly', '--label', 'purpose=debugging');
      const r = tofu('plan');
      assert.equal(r.status, 1, `${r.stdout}\n${r.stderr}`);
      const error = r.stderr.replace(/\s+/g, ' ');
      assert.match(error, /\[NAME_TAKEN\] "rc-prod@nightly" is no longer the snapshot this resource took/);
      assert.match(
        error,
        /labels: declared \{"purpose":"staging"\}, the agent has \{"purpose":"debugging"\}/,
      );
      assert.match(error, /snapsync-agent rm rc-prod@nightly/);
      assert.match(error, /snapsync-agent snapshot rc-prod nightly --label purpose=staging/);
      assert.match(error, /tofu import <address> rc-prod@nightly/);
      // Taken again with the declared labels, it is the resource.
      cli('rm', 'rc-prod@nightly');
      cli('write', 'rc-prod', '0', '--text', 'PRODUCTION');
      cli('snapshot', 'rc-prod', 'nightly', '--label', 'purpose=staging');
      assert.match(ok('apply', '-auto-approve'), /Resources: 0 added, 1 changed, 0 destroyed/);
      assert.equal(read('rc-staging', 10), 'PRODUCTION');
      noChanges();
    });

    it('tofu import of a sync spelling out safety_snapshot = true, a file with a declared size and a vdisk without one: the plan right after is empty', () => {
      for (const [resource, id] of [
        ['snapsync_sync_from_snapshot.refresh', 'rc-staging'],
        ['snapsync_container.file', 'rc-file'],
        ['snapsync_container.scratch', 'rc-scratch'],
      ]) {
        ok('state', 'rm', resource!);
        assert.match(ok('import', resource!, id!), /Import successful/);
      }
      noChanges();
      // Unsetting the default later is no change either; declaring it false is.
      fs.writeFileSync(path.join(work, 'main.tf'), CONFIG.replace('safety_snapshot = true', ''));
      noChanges();
    });

    it('destroy leaves no container', () => {
      ok('destroy', '-auto-approve');
      assert.deepEqual(cli('ls'), []);
    });
  });
}
