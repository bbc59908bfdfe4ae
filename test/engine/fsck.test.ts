/**
 * fsck finds what it must: each case corrupts one invariant directly in the
 * store (as a bug or a bad disk would) and expects exactly the problems that
 * names: their codes and the objects they point at. The cases are keyed by
 * code, so a code without a case does not typecheck.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Key, open } from 'lmdb';
import { FSCK_CODES, type FsckCode, fsckPoolDir, Pool } from '../../agent/engine';
import { decodePresence } from '../../agent/engine/presence-record';
import { dataOwner, markDataOwner } from '../../agent/engine/store/data-owner';
import { decodeGroup, encodeGroup, GROUP_SHIFT, groupKey } from '../../agent/engine/store/group-record';
import type {
  ContainerRecord,
  SequenceRecord,
  SnapshotRecord,
  TableRecord,
} from '../../agent/engine/store/records';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const BS = 4096;

/**
 * A pool with a snapshot, a clone, some free space and a VM with a VM snapshot, closed.
 * Containers a, b (a clone of a@s), v (VM), v-disk0 (its member); tables: a@s's,
 * a's and b's current (both children of a@s's), v-disk0@vs's and v-disk0's current.
 */
async function makePool(): Promise<string> {
  const dir = tempDir();
  const pool = Pool.create(dir, { blockSize: BS, capacityBytes: 1 << 22 });
  pool.createContainer({ name: 'a', type: 'vdisk', size: 16 * BS });
  pool.write('a', 0, Buffer.alloc(8 * BS, 1));
  pool.snapshot('a', 's');
  pool.write('a', 0, Buffer.alloc(2 * BS, 2));
  pool.clone('a@s', 'b');
  pool.trim('a', 0, BS); // leaves a free extent
  pool.createContainer({ name: 'v', type: 'vm' });
  pool.createContainer({ name: 'v-disk0', type: 'vdisk', size: 4 * BS });
  pool.addMember('v', 'disk0', 'v-disk0');
  pool.snapshot('v', 'vs');
  await pool.flush();
  assert.deepEqual((await pool.fsck()).problems, []);
  await pool.close();
  return dir;
}

type Db = ReturnType<ReturnType<typeof open>['openDB']>;

/** The store as a corrupting hand sees it: raw records by database and key. */
class Store {
  constructor(private readonly db: (name: string) => Db) {}

  get<T>(name: string, key: Key): T {
    const value = this.db(name).get(key);
    assert.ok(value !== undefined, `${name} ${JSON.stringify(key)} exists`);
    return value as T;
  }
  put(name: string, key: Key, value: unknown): void {
    this.db(name).putSync(key, value);
  }
  change<T>(name: string, key: Key, patch: Partial<T>): void {
    this.put(name, key, { ...this.get<T>(name, key), ...patch });
  }
  remove(name: string, key: Key): void {
    assert.ok(this.db(name).removeSync(key), `${name} ${JSON.stringify(key)} was there to remove`);
  }
  entries(name: string): Array<{ key: Key; value: unknown }> {
    return [...this.db(name).getRange({})];
  }
  /** Every map entry (format 2: decoded from the group records). */
  mapEntries(): Array<{ table: number; block: number; physical: number }> {
    return this.entries('map-groups').flatMap(({ key, value }) => {
      const [table, group] = [(key as Buffer).readUInt32BE(0), (key as Buffer).readUInt32BE(4)];
      return [...decodeGroup(value as Buffer)].map(([offset, physical]) => ({
        table,
        block: group * (1 << GROUP_SHIFT) + offset,
        physical,
      }));
    });
  }
  /** Sets one map entry in its group record. */
  setMap(table: number, block: number, physical: number): void {
    const key = groupKey(table, block >>> GROUP_SHIFT);
    const physicals = new Array<number>(1 << GROUP_SHIFT).fill(-1);
    const record = this.db('map-groups').get(key) as Buffer | undefined;
    for (const [offset, p] of record ? decodeGroup(record) : []) physicals[offset] = p;
    physicals[block & ((1 << GROUP_SHIFT) - 1)] = physical;
    this.put('map-groups', key, encodeGroup(physicals));
  }
  container(name: string): ContainerRecord {
    return this.get('containers', this.get<number>('names', name));
  }
  snapshot(container: string, name: string): SnapshotRecord {
    return this.get('snapshots', this.get<number>('snapshot-names', [this.container(container).id, name]));
  }
  /** A fresh id, with its sequence moved past it (a record added under it is then no SEQUENCE_BEHIND). */
  nextId(kind: 'container' | 'snapshot' | 'table'): number {
    const seq = this.get<SequenceRecord>('meta', 'seq');
    this.put('meta', 'seq', { ...seq, [kind]: seq[kind] + 1 });
    return seq[kind] + 1;
  }
  addTable(record: Omit<TableRecord, 'v' | 'id'>): number {
    const id = this.nextId('table');
    this.put('tables', id, { v: 1, id, ...record });
    return id;
  }
}

async function corrupt(dir: string, edit: (store: Store) => void): Promise<void> {
  const root = open({ path: path.join(dir, 'meta'), maxDbs: 16 });
  const dbs = new Map<string, Db>();
  const db = (name: string) => {
    if (!dbs.has(name)) {
      const binaryKeys = name === 'map-groups' || name === 'map-masks';
      const binary = name === 'presence' || binaryKeys;
      const encoding = name === 'map' ? 'ordered-binary' : binary ? 'binary' : 'msgpack';
      dbs.set(name, root.openDB({ name, encoding, keyEncoding: binaryKeys ? 'binary' : 'ordered-binary' }));
    }
    return dbs.get(name)!;
  };
  root.transactionSync(() => edit(new Store(db)));
  await root.close();
}

interface Expected {
  code: FsckCode;
  details: Record<string, unknown>;
}

interface Case {
  what: string;
  /** Corrupts the store; returns every problem fsck must report, in its order. */
  edit: (store: Store) => Expected[];
  /** Edit the store under the open pool: fsck compares the pool record with what the pool opened with. */
  whileOpen?: boolean;
  /** Damages the pool's files instead (closed: the agent refuses such a pool, fsck --pool checks it; or open, with whileOpen); returns what `edit` would. */
  files?: (dir: string) => Expected[];
}

/** The pool `problemsAfter` checks now (a case's expected paths name its files). */
const DIR = { current: '' };

async function problemsAfter(c: Pick<Case, 'edit' | 'whileOpen' | 'files'>): Promise<{
  found: Expected[];
  expected: Expected[];
}> {
  const dir = await makePool();
  DIR.current = dir;
  let expected: Expected[] = [];
  const edit = (store: Store) => {
    expected = c.edit(store);
  };
  if (c.files && !c.whileOpen) {
    expected = c.files(dir);
    assert.throws(() => Pool.open(dir), { code: 'CORRUPT' });
    const found = (await fsckPoolDir(dir)).problems.map(({ code, details }) => ({ code, details }));
    return { found, expected };
  }
  if (!c.whileOpen) await corrupt(dir, edit);
  const pool = Pool.open(dir);
  try {
    if (c.whileOpen && c.files) expected = c.files(dir);
    else if (c.whileOpen) {
      await corrupt(dir, edit);
      // As another process's write: lmdb renews the pool's read snapshot on the next timer tick.
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const found = (await pool.fsck()).problems.map(({ code, details }) => ({ code, details }));
    return { found, expected };
  } finally {
    await pool.close();
  }
}

/** A presence record's bitmap, as a copy to change and store back (a bitmap record is always valid). */
const bitmap = (record: Buffer): Buffer => Buffer.from(decodePresence(record)!);

const problem = (code: FsckCode, details: Record<string, unknown> = {}): Expected => ({ code, details });

const CASES: Record<FsckCode, [Case, ...Case[]]> = {
  POOL_RECORD_INVALID: [
    {
      what: 'the pool record rewritten with another block size under the open pool',
      whileOpen: true,
      edit: (s) => {
        s.change('meta', 'pool', { blockSize: 2 * BS });
        return [problem('POOL_RECORD_INVALID', { fields: ['blockSize'] })];
      },
    },
    {
      what: 'the pool record deleted under the open pool',
      whileOpen: true,
      edit: (s) => {
        s.remove('meta', 'pool');
        return [problem('POOL_RECORD_INVALID', { missing: true })];
      },
    },
  ],
  RECORD_INVALID: [
    {
      what: 'a container record stored under another id than its own',
      edit: (s) => {
        s.put('containers', 99, s.container('a'));
        return [problem('RECORD_INVALID', { container: 99 })];
      },
    },
    {
      what: "a map group record whose length does not decode (a@s's, the first)",
      edit: (s) => {
        const { key, value } = s.entries('map-groups')[0]!;
        const table = (key as Buffer).readUInt32BE(0);
        assert.equal(table, s.snapshot('a', 's').table);
        const physicals = [...decodeGroup(value as Buffer)].map(([, physical]) => physical);
        s.put('map-groups', key, Buffer.concat([value as Buffer, Buffer.alloc(4)]));
        // Its entries are unreadable: the snapshot's table seems emptied and the blocks they held leak.
        return [
          problem('RECORD_INVALID', { table, group: 0 }),
          problem('FROZEN_TABLE_WRITTEN', { table, entries: 0, frozenEntries: physicals.length }),
          problem('PRESENCE_MISMATCH', { table, chunk: 0 }),
          problem('BLOCK_LEAKED', { leaked: physicals.length, firstLeak: Math.min(...physicals) }),
        ];
      },
    },
    {
      what: 'a visible snapshot that claims only a reader holds it (heldByReader is for hidden ones)',
      edit: (s) => {
        const snapshot = s.snapshot('a', 's');
        s.put('snapshots', snapshot.id, { ...snapshot, heldByReader: true });
        return [problem('RECORD_INVALID', { snapshot: snapshot.id })];
      },
    },
  ],
  NAME_INDEX_MISMATCH: [
    {
      what: 'a name index that points elsewhere',
      edit: (s) => {
        const a = s.container('a');
        s.put('names', 'a', 999);
        return [
          problem('NAME_INDEX_MISMATCH', { name: 'a', container: a.id }),
          problem('NAME_INDEX_MISMATCH', { name: 'a', container: 999 }),
        ];
      },
    },
  ],
  CONTAINER_TABLE_INVALID: [
    {
      what: 'a VM that has a mapping table',
      edit: (s) => {
        s.change<ContainerRecord>('containers', s.container('v').id, { table: s.snapshot('a', 's').table });
        return [problem('CONTAINER_TABLE_INVALID', { container: 'v' })];
      },
    },
  ],
  MEMBER_INVALID: [
    {
      what: 'a VM member that no longer names its VM',
      edit: (s) => {
        s.change<ContainerRecord>('containers', s.container('v-disk0').id, { memberOf: null });
        return [problem('MEMBER_INVALID', { container: 'v', role: 'disk0' })];
      },
    },
    {
      what: 'a container claiming a role its VM does not list',
      edit: (s) => {
        s.change<ContainerRecord>('containers', s.container('b').id, {
          memberOf: { vm: s.container('v').id, role: 'disk1' },
        });
        return [problem('MEMBER_INVALID', { container: 'b' })];
      },
    },
    {
      what: 'a VM snapshot whose member snapshot does not name it',
      edit: (s) => {
        const member = s.snapshot('v-disk0', 'vs');
        s.change<SnapshotRecord>('snapshots', member.id, { vmSnapshot: null });
        return [problem('MEMBER_INVALID', { snapshot: s.snapshot('v', 'vs').id, member: member.id })];
      },
    },
  ],
  SNAPSHOT_TABLE_INVALID: [
    {
      what: 'a snapshot whose table is gone',
      edit: (s) => {
        const snap = s.snapshot('a', 's');
        s.change<SnapshotRecord>('snapshots', snap.id, { table: 777 });
        return [
          problem('TABLE_OWNER_INVALID', { table: snap.table }), // its table now claims a snapshot that does not use it
          problem('SNAPSHOT_TABLE_INVALID', { snapshot: snap.id }),
        ];
      },
    },
  ],
  SNAPSHOT_CONTAINER_MISSING: [
    {
      what: 'a visible snapshot of a container that does not exist',
      edit: (s) => {
        const snap = s.snapshot('a', 's');
        s.remove('snapshot-names', [snap.container, 's']);
        s.put('snapshot-names', [99, 's'], snap.id);
        s.change<SnapshotRecord>('snapshots', snap.id, { container: 99 });
        return [problem('SNAPSHOT_CONTAINER_MISSING', { snapshot: snap.id })];
      },
    },
  ],
  SNAPSHOT_NAME_INDEX_MISMATCH: [
    {
      what: 'a visible snapshot missing from the name index',
      edit: (s) => {
        const snap = s.snapshot('a', 's');
        s.remove('snapshot-names', [snap.container, 's']);
        return [problem('SNAPSHOT_NAME_INDEX_MISMATCH', { snapshot: snap.id })];
      },
    },
    {
      what: 'a snapshot name indexing a snapshot of another name',
      edit: (s) => {
        const snap = s.snapshot('a', 's');
        s.put('snapshot-names', [snap.container, 't'], snap.id);
        return [
          problem('SNAPSHOT_NAME_INDEX_MISMATCH', {
            snapshot: snap.id,
            container: snap.container,
            name: 't',
          }),
        ];
      },
    },
  ],
  HIDDEN_SNAPSHOT_UNREFERENCED: [
    {
      what: 'a hidden snapshot that nothing reads through',
      edit: (s) => {
        const id = s.nextId('snapshot');
        const table = s.addTable({ parent: null, frozen: true, owner: { kind: 'snapshot', id } });
        s.put('snapshots', id, { ...s.snapshot('a', 's'), id, name: 'old', table, hidden: true });
        return [problem('HIDDEN_SNAPSHOT_UNREFERENCED', { snapshot: id })];
      },
    },
  ],
  TABLE_OWNER_INVALID: [
    {
      what: 'a second current table claiming a container that uses another',
      edit: (s) => {
        const a = s.container('a');
        const stray = s.addTable({ parent: null, frozen: false, owner: { kind: 'container', id: a.id } });
        return [problem('TABLE_OWNER_INVALID', { table: stray })];
      },
    },
  ],
  PARENT_MISSING: [
    {
      what: 'a parent pointer to a missing table',
      edit: (s) => {
        const { table } = s.container('a');
        s.change<TableRecord>('tables', table!, { parent: 999 });
        return [problem('PARENT_MISSING', { table })];
      },
    },
  ],
  PARENT_NOT_FROZEN: [
    {
      what: "a clone whose parent is another container's current (writable) table",
      edit: (s) => {
        const { table } = s.container('b');
        s.change<TableRecord>('tables', table!, { parent: s.container('a').table });
        return [problem('PARENT_NOT_FROZEN', { table })];
      },
    },
  ],
  CHAIN_CYCLE: [
    {
      what: "two frozen tables that are each other's parent (reported once, though every chain above reaches it)",
      edit: (s) => {
        const first = s.snapshot('a', 's').table!;
        const second = s.snapshot('v-disk0', 'vs').table!;
        s.change<TableRecord>('tables', first, { parent: second });
        s.change<TableRecord>('tables', second, { parent: first });
        return [problem('CHAIN_CYCLE', { table: first, tables: [first, second] })];
      },
    },
  ],
  GARBAGE_HAS_DEPENDENTS: [
    {
      what: 'a discarded table that a clone still reads through',
      edit: (s) => {
        const garbage = s.addTable({ parent: null, frozen: true, owner: { kind: 'garbage' } });
        s.change<TableRecord>('tables', s.container('b').table!, { parent: garbage });
        return [problem('GARBAGE_HAS_DEPENDENTS', { table: garbage })];
      },
    },
  ],
  GARBAGE_HAS_PARENT: [
    {
      what: 'a discarded table that still points at its parent',
      edit: (s) => {
        const parent = s.snapshot('a', 's').table!;
        const garbage = s.addTable({ parent, frozen: false, owner: { kind: 'garbage' } });
        return [problem('GARBAGE_HAS_PARENT', { table: garbage, parent })];
      },
    },
  ],
  MAP_TABLE_MISSING: [
    {
      what: 'a map entry left behind by a table that is gone',
      edit: (s) => {
        const free = s.entries('free')[0]!.key as number;
        s.setMap(42, 3, free);
        return [problem('MAP_TABLE_MISSING', { table: 42, block: 3 })];
      },
    },
  ],
  BLOCK_OUT_OF_RANGE: [
    {
      what: 'a map entry past the high-water mark',
      edit: (s) => {
        const { table, block, physical } = s.mapEntries()[0]!;
        s.setMap(table, block, 10_000);
        return [
          problem('BLOCK_OUT_OF_RANGE', { table, block, physical: 10_000 }),
          problem('BLOCK_LEAKED', { leaked: 1, firstLeak: physical }), // the block it used to own
        ];
      },
    },
  ],
  BLOCK_DOUBLE_OWNED: [
    {
      what: 'two entries on one physical block',
      edit: (s) => {
        const [first, second] = s.mapEntries().filter((e) => e.physical !== 0);
        const { table, block } = second!;
        s.setMap(table, block, first!.physical);
        return [
          problem('BLOCK_DOUBLE_OWNED', { physical: first!.physical, table, block }),
          problem('BLOCK_LEAKED', { leaked: 1, firstLeak: second!.physical }), // the block it used to own
        ];
      },
    },
  ],
  BLOCK_LEAKED: [
    {
      what: 'a free extent that vanished',
      edit: (s) => {
        const { key, value } = s.entries('free')[0]!;
        s.remove('free', key);
        return [problem('BLOCK_LEAKED', { leaked: value, firstLeak: key })];
      },
    },
  ],
  FREE_EXTENT_INVALID: [
    {
      what: 'a free extent past the high-water mark',
      edit: (s) => {
        const hwm = s.get<number>('meta', 'hwm');
        s.put('free', hwm + 10, 5);
        return [problem('FREE_EXTENT_INVALID', { start: hwm + 10, count: 5 })];
      },
    },
  ],
  FREE_OVERLAPS_OWNED: [
    {
      what: 'a free extent over mapped blocks',
      edit: (s) => {
        s.put('free', 1, 3);
        return [1, 2, 3].map((physical) => problem('FREE_OVERLAPS_OWNED', { physical }));
      },
    },
  ],
  PRESENCE_MISMATCH: [
    {
      what: 'presence bits for blocks the map does not have',
      edit: (s) => {
        const { key, value } = s.entries('presence')[0]!;
        const bits = bitmap(value as Buffer);
        bits[100] = 0xff;
        s.put('presence', key, bits);
        const [table, chunk] = key as [number, number];
        return [problem('PRESENCE_MISMATCH', { table, chunk })];
      },
    },
    {
      what: 'a mapped block whose presence bit is clear',
      edit: (s) => {
        const { key, value } = s.entries('presence')[0]!;
        const bits = bitmap(value as Buffer);
        bits[0]! &= ~1; // block 0 of the chunk
        s.put('presence', key, bits);
        const [table, chunk] = key as [number, number];
        return [
          problem('PRESENCE_MISMATCH', { table, chunk }), // the count is off by one
          problem('PRESENCE_MISMATCH', { table, block: 0 }),
        ];
      },
    },
    {
      what: 'a presence record that does not decode (an odd length)',
      edit: (s) => {
        const { key } = s.entries('presence')[0]!;
        s.put('presence', key, Buffer.from([0, 1, 0]));
        const [table, chunk] = key as [number, number];
        return [problem('PRESENCE_MISMATCH', { table, chunk })];
      },
    },
  ],
  FORMAT_MIXED: [
    {
      what: 'a format-1 map entry left in a format-2 pool',
      edit: (s) => {
        s.put('map', [1, 0], 0);
        return [problem('FORMAT_MIXED', { db: 'map', records: 1 })];
      },
    },
  ],
  MASK_INVALID: [
    {
      what: 'a sub-block mask on an entry of a pool whose 4 KiB blocks have no sub-blocks',
      edit: (s) => {
        const table = s.container('a').table!;
        const { physical } = s.mapEntries().find((e) => e.table === table && e.block === 1)!;
        s.put('map-masks', groupKey(table, 0), Buffer.from([0, 1, 0, 1]));
        return [problem('MASK_INVALID', { table, block: 1, physical, mask: 1 })];
      },
    },
    {
      what: 'a sub-block mask for a block the table has no entry for',
      edit: (s) => {
        const table = s.container('b').table!;
        s.put('map-masks', groupKey(table, 0), Buffer.from([0, 5, 0, 1]));
        return [problem('MASK_INVALID', { table, block: 5 })];
      },
    },
  ],
  SEQUENCE_BEHIND: [
    {
      what: 'a table id sequence below the tables it numbered',
      edit: (s) => {
        const seq = s.get<SequenceRecord>('meta', 'seq');
        s.put('meta', 'seq', { ...seq, table: seq.table - 2 });
        return [problem('SEQUENCE_BEHIND', { kind: 'table', sequence: seq.table - 2, max: seq.table })];
      },
    },
  ],
  FROZEN_TABLE_WRITTEN: [
    {
      what: "a block mapped into a snapshot's table after it froze (map entry and presence bit both written)",
      edit: (s) => {
        const table = s.snapshot('a', 's').table!;
        s.setMap(table, 9, 0);
        const bits = bitmap(s.get<Buffer>('presence', [table, 0]));
        bits[1]! |= 1 << 1; // block 9
        s.put('presence', [table, 0], bits);
        return [problem('FROZEN_TABLE_WRITTEN', { table, entries: 9, frozenEntries: 8 })];
      },
    },
  ],
  IMPORT_UNDO_INVALID: [
    {
      what: 'an import mark naming a visible snapshot (the pool opens and leaves it)',
      edit: (s) => {
        const snapshot = s.snapshot('a', 's').id;
        s.change<ContainerRecord>('containers', s.container('a').id, { importUndo: snapshot });
        return [problem('IMPORT_UNDO_INVALID', { container: 'a', snapshot })];
      },
    },
    {
      what: 'an import mark naming a snapshot that does not exist',
      edit: (s) => {
        s.change<ContainerRecord>('containers', s.container('b').id, { importUndo: 999 });
        return [problem('IMPORT_UNDO_INVALID', { container: 'b', snapshot: 999 })];
      },
    },
  ],
  DATA_FILE_SHORT: [
    {
      // Four data files: physical block p is in data.((p - 1) mod 4); a, a@s map blocks 1-8 and a copy.
      what: 'a data file truncated to its first block, another one deleted',
      edit: () => [],
      files: (dir) => {
        const second = path.join(dir, 'data.1');
        fs.truncateSync(second, BS);
        const fourth = path.join(dir, 'data.3');
        fs.rmSync(fourth);
        fs.writeFileSync(fourth, '');
        return [
          problem('DATA_FILE_SHORT', { path: second, bytes: BS, blocks: 2, firstBlock: 6 }),
          problem('DATA_FILE_SHORT', { path: fourth, bytes: 0, blocks: 2, firstBlock: 4 }),
        ];
      },
    },
  ],
  DATA_FILE_OTHER_POOL: [
    {
      // Under the open pool: closed, it would not open (CORRUPT, test/cli/data-marks.test.ts).
      what: "a data file marked as another pool's",
      whileOpen: true,
      edit: () => [],
      files: (dir) => {
        const file = path.join(dir, 'data.2');
        const pool = dataOwner(file);
        markDataOwner(file, 'other-pool-uuid');
        return [problem('DATA_FILE_OTHER_POOL', { path: file, owner: 'other-pool-uuid', pool })];
      },
    },
  ],
  METADATA_OLDER_THAN_DATA: [
    {
      what: 'metadata at an older commit than its data files were stamped after',
      whileOpen: true,
      edit: (s) => {
        const now = s.get<number>('meta', 'generation');
        s.put('meta', 'generation', 1);
        return [0, 1, 2, 3].map((i) =>
          problem('METADATA_OLDER_THAN_DATA', {
            path: path.join(DIR.current, i === 0 ? 'data' : `data.${i}`),
            metadataGeneration: 1,
            dataGeneration: now,
          }),
        );
      },
    },
  ],
};

describe('fsck detects corruption and names it', () => {
  after(cleanupTempDirs);

  it('a clean pool, closed and opened again, has no problem', async () => {
    const { found } = await problemsAfter({ edit: () => [] });
    assert.deepEqual(found, []);
  });

  it('counts the snapshots a client sees apart from deleted ones still read through', async () => {
    const pool = Pool.create(tempDir('snapsync-fsck-hidden-'));
    pool.createContainer({ name: 'prod', type: 'vdisk', size: 1 << 20 });
    pool.write('prod', 0, Buffer.alloc(4096, 7));
    pool.snapshot('prod', 'nightly');
    pool.snapshot('prod', 'weekly');
    pool.clone('prod@nightly', 'staging');
    // The clone reads through nightly: deleted by name, it stays (hidden) until nothing does.
    pool.deleteSnapshot('prod@nightly');
    const report = await pool.fsck();
    assert.equal(report.ok, true);
    assert.equal(report.checked.snapshots, pool.listSnapshots().length);
    assert.deepEqual([report.checked.snapshots, report.checked.hiddenSnapshots], [1, 1]);
    await pool.close();
  });

  it('every code has a case, and only codes fsck knows are expected', () => {
    assert.deepEqual(Object.keys(CASES).sort(), [...FSCK_CODES].sort());
  });

  for (const [code, cases] of Object.entries(CASES) as Array<[FsckCode, Case[]]>) {
    for (const c of cases) {
      it(`${code}: ${c.what}`, async () => {
        const { found, expected } = await problemsAfter(c);
        assert.ok(
          expected.some((e) => e.code === code),
          `the case expects ${code} itself`,
        );
        assert.deepEqual(found, expected);
      });
    }
  }
});
