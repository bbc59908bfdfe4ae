/**
 * examples/terraform/refresh-staging with the real `tofu` (built by
 * scripts/build-tofu-cli.sh, passed in SNAPSYNC_TOFU) against a real agent, as
 * its README says to run it: dev_overrides in a TF_CLI_CONFIG_FILE,
 * SNAPSYNC_URL/SNAPSYNC_TOKEN, `apply -var snapshot_name=…`. The example's own
 * main.tf is copied unchanged (only disk_size is set small). `make e2e`.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type AgentProcess, agentCli, startAgentProcess } from '../helpers/agent-process';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { cliBinary, hclClis, tofuRunner, writeTofuRc } from './helpers/tofu';

const MiB = 1 << 20;
const ROOT = path.resolve(__dirname, '../..');
const EXAMPLE = path.join(ROOT, 'examples/terraform/refresh-staging');

for (const hcl of hclClis()) {
  describe(`${hcl.name} CLI end to end: examples/terraform/refresh-staging`, function () {
    this.timeout(600_000);
    let agent: AgentProcess;
    let work: string;
    const transcript: string[] = [];
    const cli = (...args: string[]) => agentCli(agent)(...args);

    const { tofu, ok } = tofuRunner(
      () => cliBinary(hcl),
      () => work,
      () => ({ TF_VAR_disk_size: String(8 * MiB), SNAPSYNC_URL: agent.url, SNAPSYNC_TOKEN: agent.token }),
      transcript,
    );
    const outputs = () => JSON.parse(ok('output', '-json')) as Record<string, { value: unknown }>;

    before(async () => {
      cliBinary(hcl);
      agent = await startAgentProcess();
      work = tempDir('snapsync-tofu-example-');
      writeTofuRc(work);
      fs.copyFileSync(path.join(EXAMPLE, 'main.tf'), path.join(work, 'main.tf'));
    });
    after(async () => {
      await agent?.stop();
      cleanupTempDirs();
    });

    let first: Record<string, { value: unknown }>;
    it('apply builds both VMs, the nightly snapshot and the sync, with the identity outputs', () => {
      const out = ok('apply', '-auto-approve', '-var', 'snapshot_name=nightly-2026-11-29');
      assert.match(out, /Apply complete! Resources: 10 added, 0 changed, 0 destroyed/);
      for (const vm of ['prod-web', 'staging-web']) {
        const live = cli('describe', vm);
        assert.equal(live.type, 'vm');
        assert.deepEqual(Object.keys(live.members).sort(), ['config', 'disk0', 'disk1']);
      }
      first = outputs();
      assert.equal(first.synced_from!.value, 'prod-web@nightly-2026-11-29');
      assert.equal(first.staging_uuid!.value, cli('describe', 'staging-web').uuid);
      assert.equal(typeof first.staging_identity!.value, 'object');
      assert.ok(Array.isArray(first.restored_fields!.value));
      assert.match(String(first.safety_snapshot!.value), /^staging-web@/);
    });

    it('a second plan is empty', () => {
      const r = tofu('plan', '-detailed-exitcode', '-var', 'snapshot_name=nightly-2026-11-29');
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    });

    it('a new snapshot_name takes a new snapshot and re-syncs staging in place', () => {
      const plan = tofu('plan', '-detailed-exitcode', '-var', 'snapshot_name=nightly-2026-11-30');
      assert.equal(plan.status, 2, `${plan.stdout}\n${plan.stderr}`);
      assert.match(plan.stdout, /snapsync_snapshot\.nightly must be replaced/);
      assert.match(plan.stdout, /snapsync_sync_from_snapshot\.refresh will be updated in-place/);
      assert.match(plan.stdout, /Plan: 1 to add, 1 to change, 1 to destroy/);
      ok('apply', '-auto-approve', '-var', 'snapshot_name=nightly-2026-11-30');
      const next = outputs();
      assert.equal(next.synced_from!.value, 'prod-web@nightly-2026-11-30');
      assert.equal(next.staging_uuid!.value, first.staging_uuid!.value, 'staging kept, not replaced');
      assert.ok((next.generation!.value as number) > (first.generation!.value as number));
      const again = tofu('plan', '-detailed-exitcode', '-var', 'snapshot_name=nightly-2026-11-30');
      assert.equal(again.status, 0, `${again.stdout}\n${again.stderr}`);
    });

    it('a re-sync by hand shows as drift in plan -refresh-only; the next apply syncs staging back', () => {
      const vars = ['-var', 'snapshot_name=nightly-2026-11-30'];
      cli('snapshot', 'prod-web', 'manual');
      cli('sync', 'staging-web', 'prod-web@manual');
      const refresh = tofu('plan', '-refresh-only', '-detailed-exitcode', ...vars);
      assert.equal(refresh.status, 2, `${refresh.stdout}\n${refresh.stderr}`);
      assert.match(refresh.stdout, /in_sync\s+= true -> false/);
      assert.match(refresh.stdout, /no longer descends from prod-web@nightly-2026-11-30/);
      const plan = tofu('plan', '-detailed-exitcode', ...vars);
      assert.equal(plan.status, 2, `${plan.stdout}\n${plan.stderr}`);
      assert.match(plan.stdout, /snapsync_sync_from_snapshot\.refresh will be updated in-place/);
      ok('apply', '-auto-approve', ...vars);
      assert.equal(tofu('plan', '-detailed-exitcode', ...vars).status, 0);
    });

    it('tofu import of the staging VM, then the plan is empty', () => {
      const vars = ['-var', 'snapshot_name=nightly-2026-11-30'];
      const address = 'snapsync_container.vm["staging-web"]';
      ok('state', 'rm', address);
      assert.match(ok('import', ...vars, address, 'staging-web'), /Import successful/);
      const plan = tofu('plan', '-detailed-exitcode', ...vars);
      assert.equal(plan.status, 0, `${plan.stdout}\n${plan.stderr}`);
    });

    it('import of the VM sync by its target: one re-sync in place (the agent keeps no sync options), then no change', () => {
      const vars = ['-var', 'snapshot_name=nightly-2026-11-30'];
      ok('state', 'rm', 'snapsync_sync_from_snapshot.refresh');
      assert.match(
        ok('import', ...vars, 'snapsync_sync_from_snapshot.refresh', 'staging-web'),
        /Import successful/,
      );
      const state = JSON.parse(fs.readFileSync(path.join(work, 'terraform.tfstate'), 'utf8'));
      const sync = state.resources.find((r: { type: string }) => r.type === 'snapsync_sync_from_snapshot');
      assert.equal(sync.instances[0].attributes.snapshot, 'prod-web@nightly-2026-11-30');
      assert.deepEqual(Object.keys(sync.instances[0].attributes.source_snapshot_ids).sort(), [
        'config',
        'disk0',
        'disk1',
      ]);
      // main.tf sets safety_snapshot, on_delete and when_attached, which an import cannot read back.
      const plan = tofu('plan', '-detailed-exitcode', ...vars);
      assert.equal(plan.status, 2, `${plan.stdout}\n${plan.stderr}`);
      assert.match(plan.stdout, /snapsync_sync_from_snapshot\.refresh will be updated in-place/);
      assert.match(plan.stdout, /Plan: 0 to add, 1 to change, 0 to destroy/);
      ok('apply', '-auto-approve', ...vars);
      assert.equal(tofu('plan', '-detailed-exitcode', ...vars).status, 0);
    });

    it('destroy leaves no container, fsck clean, and the token is in no file', () => {
      // Taken by hand above: destroy refuses to delete an operator's snapshot (HAS_DEPENDENTS) until it is gone.
      cli('rm', 'prod-web@manual');
      assert.match(
        ok('destroy', '-auto-approve', '-var', 'snapshot_name=nightly-2026-11-30'),
        /Destroy complete! Resources: 10 destroyed/,
      );
      const left = cli('ls').filter((c: { name: string }) => /^(prod|staging)-web/.test(c.name));
      assert.deepEqual(left, []);
      assert.equal(cli('fsck').ok, true);
      const holding = fs
        .readdirSync(work, { recursive: true, withFileTypes: true })
        .filter(
          (e) =>
            e.isFile() && fs.readFileSync(path.join(e.parentPath, e.name), 'latin1').includes(agent.token),
        );
      assert.deepEqual(holding, []);
      assert.equal(
        transcript.some((t) => t.includes(agent.token)),
        false,
      );
    });
  });
}
