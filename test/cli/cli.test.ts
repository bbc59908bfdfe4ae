/** The operator CLI as a user runs it: a real agent, the real binary, --json output and exit codes. */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { open } from 'lmdb';
import { Pool } from '../../agent/engine';
import { type AgentProcess, killAgentsTestsLeave, startAgentProcess } from '../helpers/agent-process';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const BIN = path.resolve(__dirname, '../../bin/snapsync-agent');

describe('snapsync-agent CLI', function () {
  this.timeout(120_000);
  killAgentsTestsLeave();
  let agent: AgentProcess;
  const cli = (args: string[], env: Record<string, string> = {}) => {
    const r = spawnSync(process.execPath, [BIN, ...args], {
      env: { ...process.env, SNAPSYNC_URL: agent.url, SNAPSYNC_TOKEN: agent.token, ...env },
      encoding: 'utf8',
    });
    return { status: r.status, out: r.stdout, err: r.stderr, json: () => JSON.parse(r.stdout) };
  };

  before(async () => {
    agent = await startAgentProcess();
  });
  after(async () => {
    await agent.stop();
    cleanupTempDirs();
  });
  const names = () =>
    cli(['ls', '--json'])
      .json()
      .map((c: { name: string }) => c.name) as string[];

  it('creates, writes, snapshots, syncs and reads back, with --json on every step', () => {
    assert.equal(
      cli(['create', 'web-disk0', '--type', 'vdisk', '--size', '1M', '--json']).json().size,
      1 << 20,
    );
    assert.equal(cli(['write', 'web-disk0', '512', '--text', 'from the CLI', '--json']).json().length, 12);
    assert.equal(cli(['snapshot', 'web-disk0', 'nightly', '--json']).json().name, 'nightly');
    cli(['create', 'stage-disk0', '--type', 'vdisk', '--size', '4K']);
    const sync = cli(['sync', 'stage-disk0', 'web-disk0@nightly', '--json']).json();
    assert.equal(sync.generation, 1);
    const read = cli(['read', 'stage-disk0', '512', '12', '--json']).json();
    assert.equal(Buffer.from(read.base64, 'base64').toString(), 'from the CLI');
    // Staging's chain down the left; production's own current table a branch off the same snapshot.
    assert.match(
      cli(['tree', 'stage-disk0']).out,
      /^\* stage-disk0 \(current\)\n\| o web-disk0 \(current\)\n\|\/\n\* web-disk0@nightly {2}\S+\n$/,
    );
    assert.deepEqual(
      cli(['ls', '--json'])
        .json()
        .map((c: { name: string }) => c.name),
      ['web-disk0', 'stage-disk0'],
    );
    assert.equal(cli(['fsck', '--json']).json().ok, true);
    assert.match(
      cli(['sync', 'stage-disk0', 'web-disk0@nightly']).out,
      /undo: snapsync-agent revert stage-disk0 safety-g2/,
    );
    // --no-safety, as --help documents it: a sync with no safety snapshot to revert to.
    const unsafe = cli(['sync', 'stage-disk0', 'web-disk0@nightly', '--no-safety', '--json']);
    assert.equal(unsafe.status, 0, unsafe.err);
    assert.equal(unsafe.json().safetySnapshot, null);
    assert.match(
      cli(['sync', 'stage-disk0', 'web-disk0@nightly', '--no-safety']).out,
      /no safety snapshot kept/,
    );
  });

  it("add-member and remove-member change a VM's members; a sync never takes over a container it would create", () => {
    for (const n of ['p-disk0', 'p-disk1', 's-disk0', 's-disk1'])
      cli(['create', n, '--type', 'vdisk', '--size', '64K']);
    cli(['create', 'p', '--type', 'vm', '--member', 'disk0=p-disk0', '--member', 'disk1=p-disk1']);
    cli(['create', 's', '--type', 'vm', '--member', 'disk0=s-disk0']);
    cli(['write', 'p-disk1', '0', '--text', 'production']);
    cli(['write', 's-disk1', '0', '--text', 'kept aside']);
    cli(['snapshot', 'p', 'n1']);
    // s lacks disk1: the sync would create s-disk1, which exists and is not s's: refused, nothing changed.
    const clash = cli(['sync', 's', 'p@n1', '--json']);
    assert.equal(clash.status, 1);
    assert.equal(clash.json().error.code, 'ALREADY_EXISTS');
    assert.equal(clash.json().error.details.role, 'disk1');
    assert.match(clash.json().error.message, /p@n1 has one: the sync would create s-disk1 .*\(add-member;/);
    assert.equal(cli(['describe', 's', '--json']).json().generation, 0);
    const aside = cli(['read', 's-disk1', '0', '10', '--json']).json();
    assert.equal(Buffer.from(aside.base64, 'base64').toString(), 'kept aside');

    const added = cli(['add-member', 's', 'disk1', 's-disk1', '--json']);
    assert.equal(added.status, 0, added.err);
    assert.deepEqual(added.json().members, { disk0: 's-disk0', disk1: 's-disk1' });
    assert.equal(cli(['sync', 's', 'p@n1']).status, 0);
    const synced = cli(['read', 's-disk1', '0', '10', '--json']).json();
    assert.equal(Buffer.from(synced.base64, 'base64').toString(), 'production');

    assert.match(
      cli(['remove-member', 's', 'disk1']).out,
      /^s has no disk1 now \(members: disk0=s-disk0\)$/m,
    );
    assert.ok(names().includes('s-disk1'), 'the container itself is kept');
    const gone = cli(['remove-member', 's', 'disk1', '--json']);
    assert.equal(gone.status, 1);
    assert.equal(gone.json().error.code, 'INVALID_ARGUMENT');
  });

  it("label sets and removes a container's labels; snapshot --label labels a snapshot at birth", () => {
    cli(['create', 'lab-disk', '--type', 'vdisk', '--size', '64K', '--label', 'keep=1', '--label', 'old=x']);
    const set = cli(['label', 'lab-disk', 'env=prod', 'url=a=b', 'old-', '--json']);
    assert.equal(set.status, 0, set.err);
    assert.deepEqual(
      set.json().labels,
      { keep: '1', env: 'prod', url: 'a=b' },
      'the others stay; old- removed it',
    );
    assert.equal(
      cli(['label', 'lab-disk', 'tier=web']).out.trim(),
      'labels of lab-disk: keep=1 env=prod url=a=b tier=web',
    );
    assert.equal(cli(['label', 'lab-disk', '=x']).status, 2, 'a label without a key is a usage error');
    assert.equal(cli(['label', 'no-such-disk', 'a=1']).status, 1);

    const snap = cli(['snapshot', 'lab-disk', 'nightly-1', '--label', 'kind=nightly', '--json']);
    assert.equal(snap.status, 0, snap.err);
    assert.deepEqual(snap.json().labels, { kind: 'nightly' });
    const listed = cli(['snapshots', 'lab-disk', '--json']).json() as Array<{ name: string; labels: object }>;
    assert.deepEqual(listed.find((x) => x.name === 'nightly-1')?.labels, { kind: 'nightly' });
    assert.equal(cli(['snapshot', 'lab-disk', 'nightly-2', '--label', 'nightly']).status, 2);
  });

  it("describe of a VM names the members a sync created (they hold the source's data)", () => {
    for (const d of ['cs-p0', 'cs-p1', 'cs-s0']) cli(['create', d, '--type', 'vdisk', '--size', '64K']);
    cli(['create', 'cs-prod', '--type', 'vm', '--member', 'disk0=cs-p0', '--member', 'disk1=cs-p1']);
    cli(['create', 'cs-stg', '--type', 'vm', '--member', 'disk0=cs-s0']);
    cli(['snapshot', 'cs-prod', 'n1']);
    const synced = cli(['sync', 'cs-stg', 'cs-prod@n1']);
    assert.equal(synced.status, 0, synced.err);
    assert.match(cli(['describe', 'cs-stg']).out, /^created by sync\s+disk1 \(cs-stg-disk1\)$/m);
    assert.doesNotMatch(cli(['describe', 'cs-prod']).out, /created by sync/);
  });

  it('exits 1 on an operation error, 2 on bad usage, 3 when it cannot authenticate', () => {
    const missing = cli(['describe', 'nope', '--json']);
    assert.equal(missing.status, 1);
    assert.equal(missing.json().error.code, 'NOT_FOUND');
    assert.equal(cli(['frobnicate']).status, 2);
    for (const bad of [
      ['create', 'bad-size', '--type', 'vdisk', '--size', '12Q', '--json'],
      ['read', 'web-disk0', '0', '1Z'],
    ]) {
      const r = cli(bad);
      assert.equal(r.status, 2, `${bad.join(' ')}: ${r.err}`);
      assert.match(r.err, /^error: not a size: "(12Q|1Z)" \(e\.g\. 4096, 512M, 20G\)\nrun with --help/);
    }
    assert.equal(cli(['describe', 'bad-size', '--json']).json().error.code, 'NOT_FOUND', 'nothing created');
    const denied = cli(['ls'], { SNAPSYNC_TOKEN: 'wrong' });
    assert.equal(denied.status, 3);
    assert.match(denied.err, /UNAUTHORIZED/);
  });

  it('refuses negative sizes, bad URLs, unreadable token files and empty writes as usage errors, in JSON with --json', () => {
    cli(['create', 'usage-disk', '--type', 'vdisk', '--size', '1M']);
    for (const [args, message] of [
      [
        ['create', 'neg', '--type', 'vdisk', '--size', '-1G'],
        /"-1G": sizes, offsets and counts are never negative/,
      ],
      [['resize', 'usage-disk', '-5G'], /"-5G": sizes, offsets and counts are never negative/],
      [['ls', '--url', 'not a url'], /not an agent URL: "not a url"/],
      [['ls', '--url', 'http://127.0.0.1:1'], /not an agent URL: "http:\/\/127\.0\.0\.1:1"/],
      [
        ['ls', '--token-file', '/nonexistent/token'],
        /token file \/nonexistent\/token cannot be read \(ENOENT\)/,
      ],
      [['write', 'usage-disk', '0'], /give --file or --text/],
      [['import', '/tmp/image.raw', 'usage-disk@s'], /names a snapshot: import writes into a vdisk/],
      [['ls', '--url', 'ws://127.0.0.1:1', '--url', 'ws://127.0.0.1:2'], /--url is given more than once/],
      [['write', 'usage-disk', '0', '--text', 'a', '--file', '/etc/hostname'], /mutually exclusive/],
      [['read', 'usage-disk@s', '0', '1', '--snapshot', 's'], /names a snapshot already/],
    ] as const) {
      const r = cli([...args, '--json']);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.err}`);
      assert.equal(r.json().error.code, 'USAGE', args.join(' '));
      assert.match(r.json().error.message, message, args.join(' '));
      assert.match(r.err, message, args.join(' '));
    }
    for (const [args, message] of [
      [['create', 'no-size', '--type', 'vdisk'], /a vdisk needs --size/],
      [['create', 'bad-label', '--type', 'file', '--label', 'env'], /--label "env" must look like key=value/],
      [
        ['create', 'two-labels', '--type', 'file', '--label', 'env=a', '--label', 'env=b'],
        /--label gives env twice \(a and b\): give it once/,
      ],
    ] as const) {
      const r = cli([...args, '--json']);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.err}`);
      assert.match(r.json().error.message, message);
    }
    for (const name of ['neg', 'no-size', 'bad-label', 'two-labels'])
      assert.equal(
        cli(['describe', name, '--json']).json().error.code,
        'NOT_FOUND',
        `${name}: nothing created`,
      );
    // A value may hold "="; a "__proto__" key is refused, not dropped.
    const labelled = cli(['create', 'labelled', '--type', 'file', '--label', 'url=a=b', '--json']);
    assert.deepEqual(labelled.json().labels, { url: 'a=b' });
    const proto = cli(['create', 'proto', '--type', 'file', '--label', '__proto__=x', '--json']);
    assert.equal(proto.status, 1);
    assert.equal(proto.json().error.code, 'INVALID_ARGUMENT');
    assert.equal(cli(['describe', 'usage-disk', '--json']).json().size, 1 << 20, 'not resized');
    // Free text may start like a negative number.
    assert.equal(cli(['write', 'usage-disk', '0', '--text', '-5', '--json']).json().length, 2);
  });

  it('reads and writes more than one request holds (32 MiB), and takes NAME@SNAPSHOT for read and export', () => {
    const big = path.join(agent.dir, 'big.bin');
    const bytes = Buffer.alloc(40 * 1024 * 1024);
    for (let i = 0; i < bytes.length; i += 4096) bytes.writeUInt32LE(i, i);
    fs.writeFileSync(big, bytes);
    cli(['create', 'big-disk', '--type', 'vdisk', '--size', '64M']);
    const wrote = cli(['write', 'big-disk', '1M', '--file', big, '--json']);
    assert.equal(wrote.status, 0, wrote.err);
    assert.equal(wrote.json().length, bytes.length);
    cli(['snapshot', 'big-disk', 'full']);
    cli(['write', 'big-disk', '1M', '--text', 'changed after the snapshot']);
    const back = path.join(agent.dir, 'back.bin');
    const read = cli(['read', 'big-disk@full', '1M', '40M', '--out', back, '--json']);
    assert.equal(read.status, 0, read.err);
    assert.equal(read.json().length, bytes.length);
    assert.ok(fs.readFileSync(back).equals(bytes), 'the bytes read back are the bytes written');
    // Past the end: refused before any piece is written (the first 32 MiB used to land).
    const beyond = cli(['write', 'big-disk', '30M', '--file', big, '--json']);
    assert.equal(beyond.status, 1, beyond.err);
    assert.equal(beyond.json().error.code, 'OUT_OF_RANGE');
    const at30 = Buffer.from(cli(['read', 'big-disk', '30M', '4K', '--json']).json().base64, 'base64');
    assert.ok(
      at30.equals(bytes.subarray(29 << 20, (29 << 20) + 4096)),
      'nothing of the refused write landed',
    );
    const image = path.join(agent.dir, 'full.img');
    const exported = cli(['export', 'big-disk@full', image, '--json']);
    assert.equal(exported.status, 0, exported.err);
    assert.ok(
      fs
        .readFileSync(image)
        .subarray(1 << 20, (1 << 20) + bytes.length)
        .equals(bytes),
    );
  });

  it('rm of a VM member is refused (IS_VM_MEMBER) unless --detach; rm of a VM says which member disks went with it', () => {
    for (const d of ['rm-root', 'rm-data']) cli(['create', d, '--type', 'vdisk', '--size', '64K']);
    assert.equal(
      cli(['create', 'rm-vm', '--type', 'vm', '--member', 'disk0=rm-root', '--member', 'disk1=rm-data'])
        .status,
      0,
    );
    const refusedRm = cli(['rm', 'rm-data', '--json']);
    assert.equal(refusedRm.status, 1, refusedRm.err);
    assert.equal(refusedRm.json().error.code, 'IS_VM_MEMBER');
    assert.deepEqual(cli(['describe', 'rm-vm', '--json']).json().members, {
      disk0: 'rm-root',
      disk1: 'rm-data',
    });
    assert.equal(cli(['rm', 'rm-data', '--detach']).status, 0);
    assert.deepEqual(cli(['describe', 'rm-vm', '--json']).json().members, { disk0: 'rm-root' });
    const gone = cli(['rm', 'rm-vm']);
    assert.equal(gone.status, 0, gone.err);
    assert.equal(gone.out, 'deleted rm-vm and its member disks rm-root (disk0)\n');
    assert.equal(cli(['describe', 'rm-root', '--json']).json().error.code, 'NOT_FOUND');
    assert.match(cli(['rm', '--help']).out, /a VM goes\s+with its\s+member disks/);
  });

  it('rm --detach of a member a VM snapshot holds: refused naming --recursive, which takes it out of the VM snapshot (the rest of it stays)', () => {
    for (const d of ['vs-root', 'vs-data']) cli(['create', d, '--type', 'vdisk', '--size', '64K']);
    cli(['create', 'vs-vm', '--type', 'vm', '--member', 'disk0=vs-root', '--member', 'disk1=vs-data']);
    cli(['write', 'vs-root', '0', '--text', 'root before']);
    cli(['snapshot', 'vs-vm', 'before']);
    cli(['write', 'vs-root', '0', '--text', 'root after!']);
    const refused = cli(['rm', 'vs-data', '--detach', '--json']);
    assert.equal(refused.status, 1, refused.err);
    const { error } = refused.json();
    assert.equal(error.code, 'HAS_DEPENDENTS');
    assert.deepEqual(error.details.dependents, ['vs-vm@before']);
    assert.match(error.message, /CLI --recursive/, 'the way forward');
    const removed = cli(['rm', 'vs-data', '--detach', '--recursive']);
    assert.equal(removed.status, 0, removed.err);
    assert.equal(cli(['describe', 'vs-data', '--json']).json().error.code, 'NOT_FOUND');
    const before = cli(['snapshots', 'vs-vm', '--json']).json() as Array<{ name: string; members: object }>;
    assert.deepEqual(
      Object.keys(before.find((x) => x.name === 'before')!.members),
      ['disk0'],
      'the VM snapshot keeps its other member',
    );
    const reverted = cli(['revert', 'vs-vm', 'before']);
    assert.equal(reverted.status, 0, reverted.err);
    assert.equal(
      Buffer.from(cli(['read', 'vs-root', '0', '11', '--json']).json().base64, 'base64').toString(),
      'root before',
    );
    const fsck = cli(['fsck', '--json']);
    assert.equal(fsck.status, 0, fsck.out);
  });

  it('create --type vm --member: a refused member creates nothing, and the corrected command then works', () => {
    for (const d of ['src', 'held'])
      assert.equal(cli(['create', d, '--type', 'vdisk', '--size', '64K']).status, 0);
    assert.equal(cli(['create', 'other', '--type', 'vm', '--member', 'disk0=held']).status, 0);
    const before = names();
    const attempts: Array<{ args: string[]; status: number; code?: string; message?: RegExp }> = [
      { args: ['--member', 'disk0=nonexist'], status: 1, code: 'NOT_FOUND' },
      { args: ['--member', 'disk0'], status: 2 },
      { args: ['--member', 'disk0=src', '--member', 'disk0=held'], status: 2 },
      { args: ['--member', '../x=src'], status: 1, code: 'INVALID_REQUEST' },
      { args: ['--member', 'disk0=src', '--member', 'disk1=held'], status: 1, code: 'INVALID_ARGUMENT' },
      {
        args: ['--member', 'disk0=src', '--member', 'disk1=src'],
        status: 1,
        code: 'INVALID_ARGUMENT',
        message: /"src" is named twice in this request/,
      },
    ];
    for (const a of attempts) {
      const r = cli(['create', 'v2', '--type', 'vm', ...a.args, '--json']);
      assert.equal(r.status, a.status, `${a.args.join(' ')}: ${r.out}${r.err}`);
      if (a.code) assert.equal(r.json().error.code, a.code, a.args.join(' '));
      if (a.message) assert.match(r.json().error.message, a.message);
      assert.deepEqual(names(), before, `${a.args.join(' ')} left something behind`);
    }
    const made = cli(['create', 'v2', '--type', 'vm', '--member', 'disk0=src', '--json']);
    assert.equal(made.status, 0, made.out);
    assert.deepEqual(made.json().members, { disk0: 'src' });
  });

  it('refuses a user snapshot named like a safety snapshot (reserved), so a sync never collides with one', () => {
    for (const d of ['s2', 't3'])
      assert.equal(cli(['create', d, '--type', 'vdisk', '--size', '64K']).status, 0);
    cli(['snapshot', 's2', 'a']);
    const reserved = cli(['snapshot', 't3', 'safety-g1', '--json']);
    assert.equal(reserved.status, 1);
    assert.equal(reserved.json().error.code, 'INVALID_ARGUMENT');
    assert.match(reserved.json().error.message, /reserved/);
    const sync = cli(['sync', 't3', 's2@a', '--json']);
    assert.equal(sync.status, 0, sync.out);
    assert.equal(sync.json().safetySnapshot.name, 'safety-g1');
  });

  it('has --help with examples, for the CLI and for every command', () => {
    const help = cli(['--help']);
    assert.equal(help.status, 0);
    assert.match(help.out, /Examples:/);
    assert.match(help.out, /Exit codes: 0 ok, 1 operation failed, 2 usage, 3 connection\/auth, 4 fsck/);
    const commands = [...help.out.matchAll(/^ {2}snapsync-agent ([a-z-]+)/gm)].map((m) => m[1]!);
    assert.ok(commands.length >= 20, commands.join(' '));
    for (const command of commands) {
      const own = cli([command, '--help']);
      assert.equal(own.status, 0, command);
      const examples = own.out.split('Examples:')[1] ?? '';
      assert.match(
        examples,
        new RegExp(`^ {2}snapsync-agent ${command}\\b`, 'm'),
        `${command} has an example`,
      );
    }
  });

  it('walks describe, snapshots, clone, revert, flatten, tree, usage, export, import, info and rm with --json', () => {
    const gold = cli(['create', 'gold', '--type', 'vdisk', '--size', '256K', '--json']).json();
    cli(['write', 'gold', '0', '--text', 'golden image']);
    cli(['snapshot', 'gold', 'v1']);
    const described = cli(['describe', 'gold', '--json']);
    assert.equal(described.status, 0);
    assert.deepEqual((({ name, uuid, type, size }) => ({ name, uuid, type, size }))(described.json()), {
      name: 'gold',
      uuid: gold.uuid,
      type: 'vdisk',
      size: 256 * 1024,
    });
    assert.deepEqual(
      cli(['snapshots', 'gold', '--json'])
        .json()
        .map((s: { container: string; name: string }) => `${s.container}@${s.name}`),
      ['gold@v1'],
    );

    const dev = cli(['clone', 'gold@v1', 'dev', '--json']).json();
    assert.equal(dev.name, 'dev');
    assert.deepEqual([dev.parentSnapshot.container, dev.parentSnapshot.name], ['gold', 'v1']);
    cli(['snapshot', 'dev', 'before']);
    cli(['write', 'dev', '0', '--text', 'DEV WAS HERE']);
    const reverted = cli(['revert', 'dev', 'before', '--json']);
    assert.equal(reverted.status, 0, reverted.err);
    assert.equal(reverted.json().generation, dev.generation + 1, 'a revert is a new generation');
    const text = (name: string) =>
      Buffer.from(cli(['read', name, '0', '12', '--json']).json().base64, 'base64').toString();
    assert.equal(text('dev'), 'golden image', 'revert discarded the write');

    assert.equal(cli(['tree', 'dev', '--json']).json().length, 3, 'dev → before → gold@v1');
    const flat = cli(['flatten', 'dev', '--json']);
    assert.equal(flat.status, 0, flat.err);
    assert.equal(flat.json().parentSnapshot, null);
    assert.equal(cli(['tree', 'dev', '--json']).json().length, 1, 'flattened: reads through nothing');
    assert.equal(text('dev'), 'golden image');
    assert.equal(
      cli(['flatten', 'dev']).out.trim(),
      'nothing to flatten: dev already read through no snapshot',
      'a second flatten says it had nothing to do',
    );

    // A VM: flatten says what it copied into its members; tree draws its members' chains.
    cli(['clone', 'gold@v1', 'devvm-disk0']);
    cli(['create', 'devvm', '--type', 'vm', '--member', 'disk0=devvm-disk0']);
    const vmTree = cli(['tree', 'devvm']);
    assert.equal(vmTree.status, 0, vmTree.err);
    assert.match(vmTree.out, /^\* devvm-disk0 \(current\)$/m);
    assert.match(vmTree.out, /^\* gold@v1 /m, "the member's chain is marked");
    assert.deepEqual(Object.keys(cli(['tree', 'devvm', '--json']).json()), ['disk0']);
    assert.match(
      cli(['flatten', 'devvm']).out.trim(),
      /^flattened devvm's members \(devvm-disk0\) \(copied 1 block, 4\.0 KiB\): they depend on no snapshot now$/,
      'one 4 KiB block of this pool',
    );
    assert.equal(cli(['tree', 'devvm', '--json']).json().disk0.length, 1);

    const usage = cli(['usage', 'gold', '--json']).json();
    assert.equal(usage.container, 'gold');
    assert.equal(usage.logicalBytes, 256 * 1024);

    const image = path.join(agent.dir, 'gold.img');
    const exported = cli(['export', 'gold', image, '--snapshot', 'v1', '--json']).json();
    assert.deepEqual([exported.bytes, exported.dataBytes], [256 * 1024, 4096]);
    const file = fs.readFileSync(image);
    assert.equal(file.length, 256 * 1024);
    assert.equal(file.subarray(0, 12).toString(), 'golden image');
    const imported = cli(['import', image, 'copy', '--create', '--json']).json();
    assert.deepEqual([imported.container, imported.bytes, imported.dataBytes], ['copy', 256 * 1024, 4096]);
    assert.equal(text('copy'), 'golden image');

    const info = cli(['info', '--json']).json();
    assert.equal(info.blockSize, 4096);
    assert.equal(info.containers, cli(['ls', '--json']).json().length);

    const refused = cli(['rm', 'dev', '--json']);
    assert.equal(refused.status, 1);
    assert.equal(refused.json().error.code, 'HAS_DEPENDENTS');
    assert.equal(cli(['rm', 'dev', '--recursive', '--json']).status, 0);
    assert.equal(cli(['describe', 'dev', '--json']).json().error.code, 'NOT_FOUND');
    assert.deepEqual(
      cli(['snapshots', '--json'])
        .json()
        .filter((s: { container: string }) => s.container === 'dev'),
      [],
    );
  });

  it('prints the identity table of a sync: each field kept, restored or unchanged', () => {
    const meta = (id: string, host: string) => `instance-id: ${id}\nlocal-hostname: ${host}\n`;
    for (const [name, id, host] of [
      ['prod-seed', 'iid-prod-01', 'prod-web-01'],
      ['stage-seed', 'iid-stage-01', 'stage-web-01'],
    ] as const) {
      cli(['create', name, '--type', 'file', '--label', 'snapsync.io/config-format=cloud-init']);
      cli(['write', name, '0', '--text', meta(id, host)]);
    }
    cli(['snapshot', 'prod-seed', 'nightly']);
    const sync = cli(['sync', 'stage-seed', 'prod-seed@nightly']);
    assert.equal(sync.status, 0, sync.err);
    assert.match(sync.out, /^FIELD +KEPT VALUE +STATUS +SOURCE HAD$/m);
    assert.match(sync.out, /^cloudinit\.instance-id +iid-stage-01 +restored +iid-prod-01$/m);
    assert.match(sync.out, /^cloudinit\.local-hostname +stage-web-01 +restored +prod-web-01$/m);
    assert.match(sync.out, /^name +stage-seed +unchanged$/m);
    const seed = cli(['read', 'stage-seed', '0', '26', '--json']).json();
    assert.equal(Buffer.from(seed.base64, 'base64').toString(), 'instance-id: iid-stage-01\n');
  });

  it('exits 4 when fsck finds problems, and names them', async () => {
    const poolDir = path.join(tempDir('snapsync-fsck-'), 'pool');
    const pool = Pool.create(poolDir, { blockSize: 4096, capacityBytes: 1 << 24 });
    pool.createContainer({ name: 'a', type: 'vdisk', size: 16 * 4096 });
    pool.write('a', 0, Buffer.alloc(8 * 4096, 1));
    pool.trim('a', 0, 4096);
    await pool.flush();
    await pool.close();
    // A free extent vanishes from the store, as a bug or a bad disk could make it.
    const root = open({ path: path.join(poolDir, 'meta'), maxDbs: 16 });
    const free = root.openDB({ name: 'free', encoding: 'msgpack', keyEncoding: 'ordered-binary' });
    const [first] = [...free.getRange({})];
    assert.ok(first, 'the pool has a free extent');
    await free.remove(first.key);
    await root.close();

    const broken = await startAgentProcess({ poolDir });
    try {
      const env = { SNAPSYNC_URL: broken.url, SNAPSYNC_TOKEN: broken.token };
      const json = cli(['fsck', '--json'], env);
      assert.equal(json.status, 4);
      assert.equal(json.json().ok, false);
      assert.ok(json.json().problems.some((p: { code: string }) => p.code === 'BLOCK_LEAKED'));
      const human = cli(['fsck'], env);
      assert.equal(human.status, 4);
      assert.match(human.out, /^BLOCK_LEAKED +/m);
    } finally {
      await broken.stop();
    }
  });
});
