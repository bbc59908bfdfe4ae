/**
 * Rewrites a closed format-3 pool of one data file in format 1's layout (one ordered-binary
 * `map` entry per block, `formatVersion: 1`), as a format-1 build would have
 * left it: how tests get format-1 pools larger than the frozen fixture. The
 * format-fixture test checks it against that fixture.
 */
import * as path from 'node:path';
import { open } from 'lmdb';
import { decodeGroup, GROUP_SHIFT } from '../../agent/engine/store/group-record';

export async function rewriteAsFormat1(dir: string): Promise<void> {
  const root = open({ path: path.join(dir, 'meta'), maxDbs: 16 });
  const meta = root.openDB({ name: 'meta', encoding: 'msgpack', keyEncoding: 'ordered-binary' });
  const groups = root.openDB({ name: 'map-groups', encoding: 'binary', keyEncoding: 'binary' });
  const map = root.openDB({ name: 'map', encoding: 'ordered-binary', keyEncoding: 'ordered-binary' });
  root.transactionSync(() => {
    for (const { key, value } of groups.getRange({})) {
      const table = (key as Buffer).readUInt32BE(0);
      const base = (key as Buffer).readUInt32BE(4) * (1 << GROUP_SHIFT);
      for (const [offset, physical] of decodeGroup(value as Buffer))
        map.putSync([table, base + offset], physical);
    }
    groups.clearSync();
    const { dataFiles, ...record } = meta.get('pool') as { dataFiles?: number };
    // Format 1 had one data file: a striped pool cannot be rewritten as one.
    if ((dataFiles ?? 1) !== 1) throw new Error('rewriteAsFormat1: create the pool with dataFiles: 1');
    meta.putSync('pool', { ...record, formatVersion: 1 });
  });
  await root.close();
}

/** Every format-1 map entry of a pool, `[table, block, physical]` in key order. */
export async function format1Entries(dir: string): Promise<Array<[number, number, number]>> {
  const root = open({ path: path.join(dir, 'meta'), maxDbs: 16, readOnly: true });
  const map = root.openDB({ name: 'map', encoding: 'ordered-binary', keyEncoding: 'ordered-binary' });
  const entries = [...map.getRange({})].map(
    ({ key, value }) => [...(key as [number, number]), value as number] as [number, number, number],
  );
  await root.close();
  return entries;
}
