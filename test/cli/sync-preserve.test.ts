/**
 * `sync --preserve` through the real agent and CLI: "default" in a list is the
 * default fields plus the others named; a glob that matches no field warns as
 * an exact name does; the help's --preserve example does what it says.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { runCli } from '../helpers/run-cli';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { run } from '../identity/helpers/tools';

const domain = (name: string, uuid: string, mac: string, disk: string) => `<domain type='kvm'>
  <name>${name}</name>
  <uuid>${uuid}</uuid>
  <memory unit='KiB'>1048576</memory>
  <devices>
    <disk type='file' device='disk'>
      <source file='/img/${disk}.raw'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='network'>
      <mac address='${mac}'/>
      <source network='default'/>
    </interface>
  </devices>
</domain>
`;

/** The help's examples, each command and what it says it does (yargs wraps both columns). */
function helpExamples(help: string): Array<{ command: string; says: string }> {
  const lines = help.slice(help.indexOf('Examples:')).split('\n').slice(1);
  const column = /^( +snapsync-agent .*? {2,})\S/.exec(lines[0]!)![1]!.length;
  const examples: Array<{ command: string; says: string }> = [];
  for (const line of lines) {
    const left = line.slice(0, column).trim();
    const right = line.slice(column).trim();
    if (left.startsWith('snapsync-agent ')) examples.push({ command: left, says: right });
    else if (examples.length > 0) {
      const last = examples[examples.length - 1]!;
      last.command = `${last.command} ${left}`.trim();
      last.says = `${last.says} ${right}`.trim();
    }
  }
  return examples;
}

describe('snapsync-agent sync --preserve', function () {
  this.timeout(120_000);
  let agent: AgentProcess;
  let dir: string;
  const cli = (args: string[]) => {
    const r = runCli(args, agent);
    assert.equal(r.status, 0, `${args.join(' ')}: ${r.out}${r.err}`);
    return r.out;
  };
  const stagingXml = domain(
    'stg-app',
    '57a90000-1234-4567-89ab-0000000000b1',
    '52:54:00:b1:00:01',
    'stg-app-sys',
  );

  before(async () => {
    agent = await startAgentProcess();
    dir = tempDir('snapsync-cli-preserve-');
    const vms = [
      ['app', domain('app', 'c0ffee00-1234-4567-89ab-0000000000a2', '52:54:00:02:00:01', 'app-sys')],
      ['stg-app', stagingXml],
    ];
    for (const [vm, xml] of vms) {
      fs.writeFileSync(path.join(dir, `${vm}.xml`), xml);
      cli(['create', `${vm}-cfg`, '--type', 'file']);
      cli(['write', `${vm}-cfg`, '0', '--file', path.join(dir, `${vm}.xml`)]);
      cli(['create', `${vm}-sys`, '--type', 'vdisk', '--size', '1M']);
      cli(['create', vm, '--type', 'vm', '--member', `config=${vm}-cfg`, '--member', `sys=${vm}-sys`]);
    }
    cli(['snapshot', 'app', 'snap']);
  });
  after(async () => {
    await agent.stop();
    cleanupTempDirs();
  });

  const stagingConfig = () => {
    const out = path.join(dir, 'synced.xml');
    cli(['read', 'stg-app-cfg', '0', String(Buffer.byteLength(stagingXml)), '--out', out]);
    return fs.readFileSync(out, 'utf8');
  };

  it('"default X" keeps the default fields and X: staging keeps its name, UUID and MAC', () => {
    const out = cli([
      'sync',
      'stg-app',
      'app@snap',
      '--preserve',
      'default',
      'sys.gpt.partition1.uniqueGuid',
    ]);
    assert.equal(stagingConfig(), stagingXml);
    assert.match(out, /config\.libvirt\.uuid +57a90000-1234-4567-89ab-0000000000b1 +restored/);
    // The disk has no GPT: the opt-in field named matches nothing, and says so; "default" is no field name.
    assert.match(out, /warning: sys\.gpt\.partition1\.uniqueGuid: \[IDENTITY_FIELD_MISSING\]/);
    assert.doesNotMatch(out, /warning: default:/);
    cli(['revert', 'stg-app', 'safety-g1']);
  });

  it('a glob that matches no field is a warning (IDENTITY_FIELD_MISSING), as an exact name is', () => {
    const json = JSON.parse(
      cli(['sync', 'stg-app', 'app@snap', '--preserve', 'config.libvirt.uuid', 'disk*.gpt.*', '--json']),
    );
    // What the list leaves out is production's now, and the report says so; then the glob that matched nothing.
    assert.deepEqual(
      json.identity.warnings.map((w: { path: string; code: string }) => [w.path, w.code]),
      [
        ['config.libvirt.name', 'IDENTITY_FROM_SOURCE'],
        ['config.libvirt.interface0.mac', 'IDENTITY_FROM_SOURCE'],
        ['disk*.gpt.*', 'IDENTITY_FIELD_MISSING'],
      ],
    );
    assert.match(json.identity.warnings[2].message, /no field it matches/);
  });

  it("the help's --preserve example keeps what it says on a plain vdisk (no role prefix)", () => {
    const example = helpExamples(cli(['sync', '--help'])).find((e) => e.command.includes('--preserve'));
    assert.ok(example);
    assert.match(example.says, /the default fields and the opt-in GPT partition GUIDs too/);
    const command = example.command.split(' ');
    assert.deepEqual(command.slice(0, 4), ['snapsync-agent', 'sync', 'staging-disk0', 'prod-disk0@nightly']);
    const args = command.slice(5).map((a) => a.replace(/^"(.*)"$/, '$1'));
    assert.deepEqual([command[4], ...args], ['--preserve', 'default', 'gpt.partition*']);
    const guids = {
      prod: ['5E1C0A11-7B2D-4C3E-9F40-A1B2C3D4E5F6', '0D15EA5E-1234-4ABC-8DEF-00112233AA01'],
      staging: ['57A61A6E-0000-4111-8222-333344445555', '57A61A6E-9999-4888-8777-666655554444'],
    };
    for (const [side, [disk, part]] of Object.entries(guids)) {
      const image = path.join(dir, `${side}.img`);
      fs.writeFileSync(image, Buffer.alloc(0));
      fs.truncateSync(image, 8 << 20);
      run('sgdisk', ['-o', '-n', '1:2048:0', '-U', disk!, '-u', `1:${part}`, image]);
      cli(['create', `${side}-disk0`, '--type', 'vdisk', '--size', '8M']);
      cli(['write', `${side}-disk0`, '0', '--file', image]);
    }
    cli(['snapshot', 'prod-disk0', 'nightly']);
    const json = JSON.parse(
      cli(['sync', 'staging-disk0', 'prod-disk0@nightly', '--preserve', ...args, '--json']),
    );
    assert.deepEqual(json.identity.warnings, []);
    const synced = path.join(dir, 'synced.img');
    cli(['read', 'staging-disk0', '0', String(8 << 20), '--out', synced]);
    const table = run('sgdisk', ['-p', '-i', '1', synced]).stdout;
    assert.match(table, new RegExp(`Disk identifier \\(GUID\\): ${guids.staging[0]}`));
    assert.match(table, new RegExp(`Partition unique GUID: ${guids.staging[1]}`));
  });
});
