/**
 * `clone` of a VM through the real agent and CLI (the outside tester's
 * `clone prod-app@golden dev-1`): refused while the clone's config would point
 * at production's disks and networks (exit 1, IDENTITY_REFERENCE_UNMAPPED,
 * nothing created); with `--map` the clone has fresh MACs and UUIDs and
 * prints its identity table; `--keep-identity` gives the exact copy.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EXIT } from '../../agent/cli/exit-codes';
import { type AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { runCli } from '../helpers/run-cli';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const fixture = (name: string) =>
  fs.readFileSync(path.join(__dirname, '../fixtures/identity/references', name), 'utf8');

/** Each of production's references and names → dev-1's own. */
const MAP = [
  'prod-app-01=dev-1',
  'prod-app-01.example.internal=dev-1.example.internal',
  'prod-app-01.nvram=dev-1.nvram',
  'prod-app-01.vmxf=dev-1.vmxf',
  'prod-app-01.scoreboard=dev-1.scoreboard',
  'prod-app-01-3d1b6f.hlog=dev-1.hlog',
  '/vmfs/volumes/ds-prod/prod-app-01/prod-app-01-3d1b6f.vswp=/vmfs/volumes/ds-dev/dev-1/dev-1.vswp',
  '/vmfs/volumes/ds-prod/prod-app-01/prod-app-01.vmdk=/vmfs/volumes/ds-dev/dev-1/dev-1.vmdk',
  '/vmfs/volumes/ds-prod/prod-app-01/prod-app-01_1.vmdk=/vmfs/volumes/ds-dev/dev-1/dev-1_1.vmdk',
  '/vmfs/volumes/iso-prod/ubuntu-22.04.4-live-server-amd64.iso=/vmfs/volumes/iso-dev/ubuntu-22.04.4-live-server-amd64.iso',
  'prod-frontend=dev-frontend',
  '50 2b 8f 11 9a 0c 4e 21-b3 6d 70 1f 2a 9e 44 01=50 2b 8f 11 9a 0c 4e 21-b3 6d 70 1f 2a 9e 44 99',
  'dvportgroup-1001=dvportgroup-3003',
  '17=18',
  '/vmfs/volumes/ds-prod/prod-app-01/serial0.log=/vmfs/volumes/ds-dev/dev-1/serial0.log',
].flatMap((m) => ['--map', m]);

describe('snapsync-agent clone: a VM clone gets an identity of its own', function () {
  this.timeout(120_000);
  let agent: AgentProcess;
  let dir: string;
  const ok = (args: string[]) => {
    const r = runCli(args, agent);
    assert.equal(r.status, 0, `${args.join(' ')}: ${r.out}${r.err}`);
    return r;
  };
  const configOf = (vm: string) => {
    const size = JSON.parse(ok(['describe', `${vm}-config`, '--json']).out).size;
    const file = path.join(dir, `${vm}.out`);
    ok(['read', `${vm}-config`, '0', String(size), '--out', file]);
    return fs.readFileSync(file, 'utf8');
  };

  before(async () => {
    dir = tempDir('snapsync-cli-clone-');
    agent = await startAgentProcess();
    fs.writeFileSync(path.join(dir, 'prod-app.vmx'), fixture('prod-app.vmx'));
    ok(['create', 'prod-app-disk1', '--type', 'vdisk', '--size', '1M']);
    ok(['create', 'prod-app-config', '--type', 'file']);
    ok(['write', 'prod-app-config', '0', '--file', path.join(dir, 'prod-app.vmx')]);
    ok([
      'create',
      'prod-app',
      '--type',
      'vm',
      '--member',
      'config=prod-app-config',
      '--member',
      'disk1=prod-app-disk1',
    ]);
    ok(['snapshot', 'prod-app', 'golden']);
  });
  after(async () => {
    await agent.stop();
    cleanupTempDirs();
  });

  it("refuses a clone that would point at production's disks and networks (exit 1, IDENTITY_REFERENCE_UNMAPPED), creating nothing", () => {
    const r = runCli(['clone', 'prod-app@golden', 'dev-1', '--json'], agent);
    assert.equal(r.status, EXIT.OPERATION_FAILED);
    const error = JSON.parse(r.out || r.err).error;
    assert.equal(error.code, 'IDENTITY_REFERENCE_UNMAPPED');
    assert.match(
      error.message,
      /scsi0:0\.fileName = \/vmfs\/volumes\/ds-prod\/prod-app-01\/prod-app-01\.vmdk/,
    );
    assert.equal(runCli(['describe', 'dev-1'], agent).status, EXIT.OPERATION_FAILED, 'no dev-1');
  });

  it('with --map: fresh MAC and BIOS UUID, its own disks and network, and the identity table printed', () => {
    const r = ok(['clone', 'prod-app@golden', 'dev-1', ...MAP]);
    assert.match(r.out, /^cloned prod-app@golden into dev-1/);
    assert.match(r.out, /config\.ethernet0\.generatedAddress\s+00:0c:29:\S+\s+generated\s+00:0c:29:4a:7b:01/);
    assert.match(r.out, /config\.uuid\.bios\s+.*generated\s+56 4d 8e 21/);
    const text = configOf('dev-1');
    assert.ok(!/prod/.test(text), `nothing of production's:\n${text}`);
    assert.ok(!text.includes('00:0c:29:4a:7b:01'));
    assert.ok(!text.includes('56 4d 8e 21 0c 3a 9f 11-4b 77 2a 10 c3 e9 01 aa'));
    assert.match(text, /ethernet0\.networkName = "dev-frontend"/);
    const json = JSON.parse(ok(['clone', 'prod-app@golden', 'dev-2', ...MAP, '--json']).out);
    assert.equal(
      json.identity.fields.find((f: { path: string }) => f.path === 'config.uuid.bios').status,
      'generated',
    );
  });

  it('--keep-identity gives the exact copy, and says so', () => {
    const r = ok(['clone', 'prod-app@golden', 'forensics', '--keep-identity']);
    assert.match(r.out, /warning: identity kept/);
    assert.equal(configOf('forensics'), fixture('prod-app.vmx'));
    const both = runCli(['clone', 'prod-app@golden', 'x', '--keep-identity', '--map', 'a=b'], agent);
    assert.equal(both.status, EXIT.OPERATION_FAILED);
    assert.match(both.err, /INVALID_ARGUMENT/);
  });
});
