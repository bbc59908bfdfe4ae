/**
 * Model-based test: random sequences of operations run against a real pool
 * and against a plain in-memory model (a Buffer per container and snapshot).
 * After every step every container and snapshot reads exactly as the model
 * says, every refused operation is refused with the code the model predicts,
 * and fsck is clean — also across close and reopen.
 * Reproduce a failure with SNAPSYNC_MODEL_SEED=<seed printed on failure>.
 */
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Pool } from '../../agent/engine';
import { cleanupTempDirs } from '../helpers/tmp';
import { runAgainstModel } from './helpers/model-run';

const BS = 4096;
/** Sub-block writes (sub-block.ts) need blocks of several 4 KiB pages: the same runs again on 16 KiB blocks. */
const BLOCK_SIZES = [BS, 4 * BS];
const NAMES = ['c0', 'c1', 'c2'];
const SNAPS = ['s0', 's1', 's2'];
const SIZES = [5 * BS, 16 * BS, 16 * BS + 1000, 24 * BS];

type Op =
  | { op: 'create'; c: number; size: number }
  /** `at` is per mille of the container's size (over 1000: past the end), resolved to `off` before use. */
  /** `pages`: offset and length rounded to whole 4 KiB pages, as a guest file system writes. */
  | { op: 'write'; c: number; at: number; off?: number; len: number; byte: number; pages: boolean }
  | { op: 'zero'; c: number; at: number; off?: number; len: number }
  | { op: 'snap'; c: number; s: number }
  | { op: 'sync'; c: number; src: number; s: number; safety: boolean }
  | { op: 'clone'; c: number; s: number; to: number }
  | { op: 'revert'; c: number; s: number }
  | { op: 'flatten'; c: number }
  | { op: 'delsnap'; c: number; s: number }
  | { op: 'delete'; c: number; recursive: boolean }
  | { op: 'resize'; c: number; size: number; shrink: boolean }
  | { op: 'reopen' }
  | { op: 'flush' }
  | { op: 'reclaim' };

const c = fc.integer({ min: 0, max: NAMES.length - 1 });
const s = fc.integer({ min: 0, max: SNAPS.length - 1 });
const size = fc.constantFrom(...SIZES);
const at = fc.integer({ min: 0, max: 1050 });
const len = fc.integer({ min: 1, max: 3 * BS + 17 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('create' as const), c, size }) },
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('write' as const),
      c,
      at,
      len,
      byte: fc.integer({ min: 1, max: 255 }),
      pages: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('zero' as const), c, at, len }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('snap' as const), c, s }) },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant('sync' as const), c, src: c, s, safety: fc.boolean() }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('clone' as const), c, s, to: c }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('revert' as const), c, s }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('flatten' as const), c }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('delsnap' as const), c, s }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), c, recursive: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('resize' as const), c, size, shrink: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('reopen' as const) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('flush' as const) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('reclaim' as const) }) },
);

/** The reference model: plain buffers, no sharing, no cleverness. */
interface ModelContainer {
  data: Buffer;
  generation: number;
  /** snapshot name → content */
  snapshots: Map<string, Buffer>;
}

class Model {
  containers = new Map<string, ModelContainer>();

  expect(op: Op): string | null {
    const name = 'c' in op ? NAMES[op.c]! : '';
    const target = this.containers.get(name);
    switch (op.op) {
      case 'create':
        if (target) return 'ALREADY_EXISTS';
        this.containers.set(name, { data: Buffer.alloc(op.size), generation: 0, snapshots: new Map() });
        return null;
      case 'write':
      case 'zero': {
        if (!target) return 'NOT_FOUND';
        op.off = Math.floor((op.at * target.data.length) / 1000);
        if (op.op === 'write' && op.pages) {
          op.off -= op.off % BS;
          op.len = Math.ceil(op.len / BS) * BS;
        }
        if (op.off + op.len > target.data.length) return 'OUT_OF_RANGE';
        target.data.fill(op.op === 'write' ? op.byte : 0, op.off, op.off + op.len);
        return null;
      }
      case 'snap':
        if (!target) return 'NOT_FOUND';
        if (target.snapshots.has(SNAPS[op.s]!)) return 'ALREADY_EXISTS';
        target.snapshots.set(SNAPS[op.s]!, Buffer.from(target.data));
        return null;
      case 'sync': {
        if (!target) return 'NOT_FOUND';
        const source = this.containers.get(NAMES[op.src]!)?.snapshots.get(SNAPS[op.s]!);
        if (!source) return 'NOT_FOUND';
        target.generation++;
        if (op.safety) target.snapshots.set(`safety-g${target.generation}`, target.data);
        target.data = Buffer.from(source);
        return null;
      }
      case 'clone': {
        const source = target?.snapshots.get(SNAPS[op.s]!);
        if (!source) return 'NOT_FOUND';
        const to = NAMES[op.to]!;
        if (this.containers.has(to)) return 'ALREADY_EXISTS';
        this.containers.set(to, { data: Buffer.from(source), generation: 1, snapshots: new Map() });
        return null;
      }
      case 'revert': {
        if (!target) return 'NOT_FOUND';
        const snap = target.snapshots.get(SNAPS[op.s]!);
        if (!snap) return 'NOT_FOUND';
        target.generation++;
        target.data = Buffer.from(snap);
        return null;
      }
      case 'flatten':
        return target ? null : 'NOT_FOUND';
      case 'delsnap':
        if (!target?.snapshots.has(SNAPS[op.s]!)) return 'NOT_FOUND';
        target.snapshots.delete(SNAPS[op.s]!);
        return null;
      case 'delete':
        if (!target) return 'NOT_FOUND';
        if (target.snapshots.size > 0 && !op.recursive) return 'HAS_DEPENDENTS';
        this.containers.delete(name);
        return null;
      case 'resize': {
        if (!target) return 'NOT_FOUND';
        if (op.size < target.data.length && !op.shrink) return 'INVALID_ARGUMENT';
        const resized = Buffer.alloc(op.size);
        target.data.copy(resized, 0, 0, Math.min(op.size, target.data.length));
        target.data = resized;
        return null;
      }
      default:
        return null;
    }
  }
}

async function apply(pool: Pool, op: Op): Promise<void> {
  const name = 'c' in op ? NAMES[op.c]! : '';
  switch (op.op) {
    case 'create':
      pool.createContainer({ name, type: 'vdisk', size: op.size });
      return;
    case 'write':
      pool.write(name, op.off ?? 0, Buffer.alloc(op.len, op.byte));
      return;
    case 'zero':
      pool.writeZeroes(name, op.off ?? 0, op.len);
      return;
    case 'snap':
      pool.snapshot(name, SNAPS[op.s]!);
      return;
    case 'sync':
      pool.sync(name, `${NAMES[op.src]}@${SNAPS[op.s]}`, { safetySnapshot: op.safety });
      return;
    case 'clone':
      pool.clone(`${name}@${SNAPS[op.s]}`, NAMES[op.to]!);
      return;
    case 'revert':
      pool.revert(name, SNAPS[op.s]!);
      return;
    case 'flatten':
      await pool.flatten(name);
      return;
    case 'delsnap':
      pool.deleteSnapshot(`${name}@${SNAPS[op.s]}`);
      return;
    case 'delete':
      pool.deleteContainer(name, { recursive: op.recursive });
      return;
    case 'resize':
      pool.resize(name, op.size, { shrink: op.shrink });
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
    assert.equal(info.size, m.data.length, `step ${step}: size of ${name}`);
    assert.ok(pool.read(name, 0, m.data.length).equals(m.data), `step ${step}: content of ${name}`);
    const snaps = pool
      .listSnapshots(name)
      .map((x) => x.name)
      .sort();
    assert.deepEqual(snaps, [...m.snapshots.keys()].sort(), `step ${step}: snapshots of ${name}`);
    for (const [snap, content] of m.snapshots) {
      assert.ok(
        pool.readSnapshot(`${name}@${snap}`, 0, content.length).equals(content),
        `step ${step}: ${name}@${snap}`,
      );
    }
  }
  const report = await pool.fsck();
  assert.deepEqual(report.problems, [], `step ${step}: fsck`);
}

describe('engine model test (random operations vs an in-memory model)', () => {
  after(cleanupTempDirs);

  for (const blockSize of BLOCK_SIZES)
    it(`reads equal the model, refusals match, fsck stays clean, across reopen (${blockSize / 1024} KiB blocks)`, async () => {
      const seed = Number(process.env.SNAPSYNC_MODEL_SEED ?? Date.now() % 2 ** 31);
      const numRuns = Number(process.env.SNAPSYNC_MODEL_RUNS ?? 60);
      try {
        await fc.assert(
          fc.asyncProperty(
            size,
            size,
            fc.array(opArb, { minLength: 40, maxLength: 120, size: 'max' }),
            async (size0, size1, rest) => {
              // Start with two containers so most operations have something to act on.
              const ops: Op[] = [
                { op: 'create', c: 0, size: size0 },
                { op: 'create', c: 1, size: size1 },
                ...rest,
              ];
              await runAgainstModel(ops, {
                model: new Model(),
                expect: (model, op) => model.expect(op),
                apply,
                check: checkAgainstModel,
                blockSize,
              });
            },
          ),
          { seed, numRuns },
        );
      } catch (err) {
        console.error(`model test failed; reproduce with SNAPSYNC_MODEL_SEED=${seed}`);
        throw err;
      }
    });
});
