/**
 * Model-based test for VMs and files: random sequences of operations run
 * against a real pool and against a plain in-memory model. VMs have members
 * `config` (a file) and `disk0` (a vdisk); operations write members (a file
 * grows when written past its end), snapshot VMs and members, sync a VM (or a
 * member) to another's snapshot — all roles or a subset, with or without a
 * safety snapshot, no identity hooks — revert, clone VM or member snapshots,
 * delete snapshots and containers, flush, and close/reopen. After every step
 * every container and snapshot reads exactly as the model says, every refused
 * operation is refused with the code the model predicts, and fsck is clean.
 * Reproduce a failure with SNAPSYNC_MODEL_SEED=<seed printed on failure>.
 */
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Pool } from '../../agent/engine';
import { cleanupTempDirs } from '../helpers/tmp';
import { runAgainstModel } from './helpers/model-run';

const BS = 4096;
const VMS = ['vm0', 'vm1', 'vm2'];
const KS = ['k0', 'k1'];
const ROLES = ['config', 'disk0'] as const;
const ROLE_TYPE: Record<string, 'file' | 'vdisk'> = { config: 'file', disk0: 'vdisk' };
/** Every name an operation may address: VMs, clones, and the members they may have. */
const ALL = [...VMS, ...KS, ...[...VMS, ...KS].flatMap((v) => ROLES.map((r) => `${v}-${r}`))];
/** Names a user snapshot may get (`safety-g2` is reserved for sync's safety snapshots: refused). */
const SNAP_NAMES = ['s0', 's1', 'safety-g2'];
/** Names snapshots are looked up by. */
const SNAP_REFS = ['s0', 's1', 'safety-g1', 'safety-g2'];
const CONFIG_SIZES = [1000, 3 * BS + 5];
const DISK_SIZES = [5 * BS, 8 * BS + 100];
const MEMBER_SETS: Array<string[] | undefined> = [
  undefined,
  ['config'],
  ['disk0'],
  ['disk0', 'config'],
  [],
  ['nope'],
];

type Op =
  | { op: 'createvm'; v: number; withMembers: boolean; cfg: number; disk: number }
  /** `at` is per mille of the container's size (over 1000: past the end), resolved to `off` before use. */
  | { op: 'write'; t: number; at: number; off?: number; len: number; byte: number }
  | { op: 'zero'; t: number; at: number; off?: number; len: number }
  | { op: 'resize'; t: number; size: number; shrink: boolean }
  | { op: 'snap'; t: number; s: number }
  | { op: 'sync'; t: number; src: number; s: number; safety: boolean; m: number }
  | { op: 'revert'; t: number; s: number }
  | { op: 'clone'; src: number; s: number; to: number }
  | { op: 'delsnap'; t: number; s: number }
  | { op: 'delete'; t: number; recursive: boolean }
  | { op: 'reopen' }
  | { op: 'flush' }
  | { op: 'reclaim' };

/** Targets biased towards the first two VMs and their members, which exist most of the time. */
const t = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(0, 1, 5, 6, 7, 8) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: ALL.length - 1 }) },
);
const vmT = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(0, 1) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: VMS.length + KS.length - 1 }) },
);
const anyT = fc.oneof({ weight: 1, arbitrary: t }, { weight: 1, arbitrary: vmT });
const sName = fc.integer({ min: 0, max: SNAP_NAMES.length - 1 });
const sRef = fc.integer({ min: 0, max: SNAP_REFS.length - 1 });
const at = fc.integer({ min: 0, max: 1100 });
const len = fc.integer({ min: 1, max: 2 * BS + 17 });
const cfg = fc.constantFrom(...CONFIG_SIZES);
const disk = fc.constantFrom(...DISK_SIZES);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('createvm' as const),
      v: fc.integer({ min: 0, max: VMS.length - 1 }),
      withMembers: fc.boolean(),
      cfg,
      disk,
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('write' as const),
      t,
      at,
      len,
      byte: fc.integer({ min: 1, max: 255 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('zero' as const), t, at, len }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('resize' as const),
      t: anyT,
      size: fc.constantFrom(...CONFIG_SIZES, ...DISK_SIZES),
      shrink: fc.boolean(),
    }),
  },
  { weight: 5, arbitrary: fc.record({ op: fc.constant('snap' as const), t: anyT, s: sName }) },
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant('sync' as const),
      t: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(0, 1) }, { weight: 1, arbitrary: anyT }),
      src: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(0, 1) }, { weight: 1, arbitrary: anyT }),
      s: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(0, 1) }, { weight: 1, arbitrary: sRef }),
      safety: fc.boolean(),
      m: fc.integer({ min: 0, max: MEMBER_SETS.length - 1 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('revert' as const), t: anyT, s: sRef }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('clone' as const),
      src: anyT,
      s: sRef,
      to: fc.integer({ min: 0, max: 2 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('delsnap' as const), t: anyT, s: sRef }) },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('delete' as const), t: vmT, recursive: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('reopen' as const) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('flush' as const) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('reclaim' as const) }) },
);
const CLONE_TARGETS = ['k0', 'k1', 'vm2'];

type Kind = 'vm' | 'file' | 'vdisk';
interface MSnap {
  /** Data snapshot: its content; VM snapshot: null. */
  data: Buffer | null;
  /** VM snapshot: role → member container (whose snapshot of the same name is the member snapshot). */
  roles: Map<string, string>;
  /** A member snapshot owned by a VM snapshot. */
  vmOwned: boolean;
}
interface MContainer {
  type: Kind;
  data: Buffer;
  generation: number;
  snapshots: Map<string, MSnap>;
  members: Map<string, string>;
  memberOf: { vm: string; role: string } | null;
}

/** The reference model: plain buffers, no sharing, no cleverness. */
class Model {
  containers = new Map<string, MContainer>();

  private add(name: string, type: Kind, data: Buffer, generation: number, memberOf: MContainer['memberOf']) {
    assert.ok(!this.containers.has(name), `model: ${name} already exists`);
    const c: MContainer = { type, data, generation, snapshots: new Map(), members: new Map(), memberOf };
    this.containers.set(name, c);
    return c;
  }

  /** `safety-g<generation>`, or with `-1`, `-2`, … the first none of `containers` has a snapshot of. */
  private freeSafetyName(containers: MContainer[], generation: number): string {
    for (let n = 0; ; n++) {
      const name = n === 0 ? `safety-g${generation}` : `safety-g${generation}-${n}`;
      if (!containers.some((c) => c.snapshots.has(name))) return name;
    }
  }

  private snapData(container: string, snap: string): Buffer {
    return this.containers.get(container)!.snapshots.get(snap)!.data!;
  }

  expect(op: Op): string | null {
    switch (op.op) {
      case 'createvm': {
        const vm = VMS[op.v]!;
        if (this.containers.has(vm)) return 'ALREADY_EXISTS';
        const c = this.add(vm, 'vm', Buffer.alloc(0), 0, null);
        if (op.withMembers) {
          for (const [role, size] of [
            ['config', op.cfg],
            ['disk0', op.disk],
          ] as const) {
            this.add(`${vm}-${role}`, ROLE_TYPE[role]!, Buffer.alloc(size), 0, { vm, role });
            c.members.set(role, `${vm}-${role}`);
          }
        }
        return null;
      }
      case 'write':
      case 'zero': {
        const c = this.containers.get(ALL[op.t]!);
        if (!c) return 'NOT_FOUND';
        if (c.type === 'vm') return 'TYPE_MISMATCH';
        op.off = Math.floor((op.at * c.data.length) / 1000);
        const end = op.off + op.len;
        if (end > c.data.length) {
          if (op.op === 'zero' || c.type !== 'file') return 'OUT_OF_RANGE';
          const grown = Buffer.alloc(end);
          c.data.copy(grown);
          c.data = grown;
        }
        c.data.fill(op.op === 'write' ? op.byte : 0, op.off, end);
        return null;
      }
      case 'resize': {
        const c = this.containers.get(ALL[op.t]!);
        if (!c) return 'NOT_FOUND';
        if (c.type === 'vm') return 'TYPE_MISMATCH';
        if (op.size < c.data.length && !op.shrink) return 'INVALID_ARGUMENT';
        const resized = Buffer.alloc(op.size);
        c.data.copy(resized, 0, 0, Math.min(op.size, c.data.length));
        c.data = resized;
        return null;
      }
      case 'snap': {
        const c = this.containers.get(ALL[op.t]!);
        const name = SNAP_NAMES[op.s]!;
        if (!c) return 'NOT_FOUND';
        if (name.startsWith('safety-g')) return 'INVALID_ARGUMENT';
        if (c.snapshots.has(name)) return 'ALREADY_EXISTS';
        if (c.type !== 'vm') {
          c.snapshots.set(name, { data: Buffer.from(c.data), roles: new Map(), vmOwned: false });
          return null;
        }
        for (const member of c.members.values()) {
          if (this.containers.get(member)!.snapshots.has(name)) return 'ALREADY_EXISTS';
        }
        for (const member of c.members.values()) {
          const m = this.containers.get(member)!;
          m.snapshots.set(name, { data: Buffer.from(m.data), roles: new Map(), vmOwned: true });
        }
        c.snapshots.set(name, { data: null, roles: new Map(c.members), vmOwned: false });
        return null;
      }
      case 'sync': {
        const targetName = ALL[op.t]!;
        const target = this.containers.get(targetName);
        if (!target) return 'NOT_FOUND';
        const sourceName = ALL[op.src]!;
        const source = this.containers.get(sourceName);
        const snapName = SNAP_REFS[op.s]!;
        const snap = source?.snapshots.get(snapName);
        if (!source || !snap) return 'NOT_FOUND';
        if (target.type !== source.type) return 'TYPE_MISMATCH';
        if (target.type !== 'vm') {
          if (op.safety) {
            const safetyName = this.freeSafetyName([target], target.generation + 1);
            target.snapshots.set(safetyName, { data: target.data, roles: new Map(), vmOwned: false });
          }
          target.data = Buffer.from(snap.data!);
          target.generation++;
          return null;
        }
        const wanted = MEMBER_SETS[op.m] ?? [...snap.roles.keys()];
        for (const role of wanted) {
          if (!snap.roles.has(role)) return 'INVALID_ARGUMENT';
          if (!target.members.has(role) && this.containers.has(`${targetName}-${role}`))
            return 'ALREADY_EXISTS';
        }
        // The safety snapshot covers the synced roles the target had before the sync.
        const safetyRoles = [...target.members].filter(([role]) => wanted.includes(role));
        // A member synced on its own may hold safety-g<N> already: the sync takes the next free name.
        const safetyName = this.freeSafetyName(
          [target, ...safetyRoles.map(([, member]) => this.containers.get(member)!)],
          target.generation + 1,
        );
        const contents = wanted.map((role) => Buffer.from(this.snapData(snap.roles.get(role)!, snapName)));
        if (op.safety) {
          for (const [, member] of safetyRoles) {
            const m = this.containers.get(member)!;
            m.snapshots.set(safetyName, { data: Buffer.from(m.data), roles: new Map(), vmOwned: true });
          }
          target.snapshots.set(safetyName, { data: null, roles: new Map(safetyRoles), vmOwned: false });
        }
        for (const [i, role] of wanted.entries()) {
          let memberName = target.members.get(role);
          if (memberName === undefined) {
            memberName = `${targetName}-${role}`;
            const type = this.containers.get(snap.roles.get(role)!)!.type;
            this.add(memberName, type, Buffer.alloc(0), 0, { vm: targetName, role });
            target.members.set(role, memberName);
          }
          const m = this.containers.get(memberName)!;
          m.data = contents[i]!;
          m.generation++;
        }
        target.generation++;
        return null;
      }
      case 'revert': {
        const c = this.containers.get(ALL[op.t]!);
        if (!c) return 'NOT_FOUND';
        const name = SNAP_REFS[op.s]!;
        const snap = c.snapshots.get(name);
        if (!snap) return 'NOT_FOUND';
        if (c.type !== 'vm') {
          c.data = Buffer.from(snap.data!);
          c.generation++;
          return null;
        }
        for (const [role, member] of snap.roles) {
          assert.equal(c.members.get(role), member, 'model: VM members never change');
          const m = this.containers.get(member)!;
          m.data = Buffer.from(this.snapData(member, name));
          m.generation++;
        }
        c.generation++;
        return null;
      }
      case 'clone': {
        const sourceName = ALL[op.src]!;
        const name = SNAP_REFS[op.s]!;
        const snap = this.containers.get(sourceName)?.snapshots.get(name);
        if (!snap) return 'NOT_FOUND';
        const to = CLONE_TARGETS[op.to]!;
        if (this.containers.has(to)) return 'ALREADY_EXISTS';
        if (snap.data !== null) {
          this.add(to, this.containers.get(sourceName)!.type, Buffer.from(snap.data), 1, null);
          return null;
        }
        for (const role of snap.roles.keys()) {
          if (this.containers.has(`${to}-${role}`)) return 'ALREADY_EXISTS';
        }
        const vm = this.add(to, 'vm', Buffer.alloc(0), 1, null);
        for (const [role, member] of snap.roles) {
          const source = this.containers.get(member)!;
          this.add(`${to}-${role}`, source.type, Buffer.from(this.snapData(member, name)), 1, {
            vm: to,
            role,
          });
          vm.members.set(role, `${to}-${role}`);
        }
        return null;
      }
      case 'delsnap': {
        const c = this.containers.get(ALL[op.t]!);
        const name = SNAP_REFS[op.s]!;
        const snap = c?.snapshots.get(name);
        if (!c || !snap) return 'NOT_FOUND';
        if (snap.vmOwned) return 'INVALID_ARGUMENT';
        for (const member of snap.roles.values()) this.containers.get(member)!.snapshots.delete(name);
        c.snapshots.delete(name);
        return null;
      }
      case 'delete': {
        const name = ALL[op.t]!;
        const c = this.containers.get(name);
        if (!c) return 'NOT_FOUND';
        assert.equal(c.memberOf, null, 'model: members are not deleted on their own');
        const doomed = [name, ...c.members.values()];
        if (!op.recursive && doomed.some((d) => this.containers.get(d)!.snapshots.size > 0)) {
          return 'HAS_DEPENDENTS';
        }
        for (const d of doomed) this.containers.delete(d);
        return null;
      }
      default:
        return null;
    }
  }
}

async function apply(pool: Pool, op: Op): Promise<void> {
  switch (op.op) {
    case 'createvm': {
      const vm = VMS[op.v]!;
      pool.createContainer({ name: vm, type: 'vm' });
      if (op.withMembers) {
        pool.createContainer({ name: `${vm}-config`, type: 'file', size: op.cfg });
        pool.addMember(vm, 'config', `${vm}-config`);
        pool.createContainer({ name: `${vm}-disk0`, type: 'vdisk', size: op.disk });
        pool.addMember(vm, 'disk0', `${vm}-disk0`);
      }
      return;
    }
    case 'write':
      pool.write(ALL[op.t]!, op.off ?? 0, Buffer.alloc(op.len, op.byte));
      return;
    case 'zero':
      pool.writeZeroes(ALL[op.t]!, op.off ?? 0, op.len);
      return;
    case 'resize':
      pool.resize(ALL[op.t]!, op.size, { shrink: op.shrink });
      return;
    case 'snap':
      pool.snapshot(ALL[op.t]!, SNAP_NAMES[op.s]!);
      return;
    case 'sync': {
      const members = MEMBER_SETS[op.m];
      pool.sync(ALL[op.t]!, `${ALL[op.src]}@${SNAP_REFS[op.s]}`, {
        safetySnapshot: op.safety,
        ...(members ? { members } : {}),
      });
      return;
    }
    case 'revert':
      pool.revert(ALL[op.t]!, SNAP_REFS[op.s]!);
      return;
    case 'clone':
      pool.clone(`${ALL[op.src]}@${SNAP_REFS[op.s]}`, CLONE_TARGETS[op.to]!);
      return;
    case 'delsnap':
      pool.deleteSnapshot(`${ALL[op.t]}@${SNAP_REFS[op.s]}`);
      return;
    case 'delete':
      pool.deleteContainer(ALL[op.t]!, { recursive: op.recursive });
      return;
    case 'flush':
      await pool.flush();
      return;
    case 'reclaim':
      pool.reclaim();
      return;
    default:
      return;
  }
}

async function checkAgainstModel(pool: Pool, model: Model, step: number): Promise<void> {
  const names = pool
    .listContainers()
    .map((x) => x.name)
    .sort();
  assert.deepEqual(names, [...model.containers.keys()].sort(), `step ${step}: container list`);
  for (const [name, m] of model.containers) {
    const info = pool.describe(name);
    assert.equal(info.type, m.type, `step ${step}: type of ${name}`);
    assert.equal(info.generation, m.generation, `step ${step}: generation of ${name}`);
    assert.deepEqual(info.members, Object.fromEntries(m.members), `step ${step}: members of ${name}`);
    assert.deepEqual(info.memberOf, m.memberOf, `step ${step}: memberOf of ${name}`);
    if (m.type !== 'vm') {
      assert.equal(info.size, m.data.length, `step ${step}: size of ${name}`);
      assert.ok(pool.read(name, 0, m.data.length).equals(m.data), `step ${step}: content of ${name}`);
    }
    const snaps = pool
      .listSnapshots(name)
      .map((x) => x.name)
      .sort();
    assert.deepEqual(snaps, [...m.snapshots.keys()].sort(), `step ${step}: snapshots of ${name}`);
    for (const [snap, content] of m.snapshots) {
      const ref = `${name}@${snap}`;
      const sinfo = pool.describeSnapshot(ref);
      if (content.data === null) {
        assert.deepEqual(
          Object.keys(sinfo.members).sort(),
          [...content.roles.keys()].sort(),
          `step ${step}: roles of ${ref}`,
        );
      } else {
        assert.equal(sinfo.size, content.data.length, `step ${step}: size of ${ref}`);
        assert.equal(
          sinfo.vmSnapshot !== null,
          content.vmOwned,
          `step ${step}: ${ref} owned by a VM snapshot`,
        );
        assert.ok(
          pool.readSnapshot(ref, 0, content.data.length).equals(content.data),
          `step ${step}: content of ${ref}`,
        );
      }
    }
  }
  const report = await pool.fsck();
  assert.deepEqual(report.problems, [], `step ${step}: fsck`);
}

describe('engine VM model test (VMs, files and vdisks vs an in-memory model)', () => {
  after(cleanupTempDirs);

  it('reads equal the model, refusals match, fsck stays clean, across reopen', async () => {
    const seed = Number(process.env.SNAPSYNC_MODEL_SEED ?? Date.now() % 2 ** 31);
    const numRuns = Number(process.env.SNAPSYNC_MODEL_RUNS ?? 40);
    try {
      await fc.assert(
        fc.asyncProperty(
          cfg,
          disk,
          cfg,
          disk,
          fc.array(opArb, { minLength: 10, maxLength: 40, size: 'max' }),
          async (cfg0, disk0, cfg1, disk1, rest) => {
            // Start with two full VMs so most operations have something to act on.
            const ops: Op[] = [
              { op: 'createvm', v: 0, withMembers: true, cfg: cfg0, disk: disk0 },
              { op: 'createvm', v: 1, withMembers: true, cfg: cfg1, disk: disk1 },
              ...rest,
            ];
            await runAgainstModel(ops, {
              model: new Model(),
              expect: (model, op) => model.expect(op),
              apply,
              check: checkAgainstModel,
              blockSize: BS,
            });
          },
        ),
        { seed, numRuns },
      );
    } catch (err) {
      console.error(`VM model test failed; reproduce with SNAPSYNC_MODEL_SEED=${seed}`);
      throw err;
    }
  });
});
