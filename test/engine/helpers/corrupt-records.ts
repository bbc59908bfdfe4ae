/** Writes records straight into a closed pool's LMDB: what an agent of another version, or a bad disk, leaves. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { open } from 'lmdb';
import {
  decodeGroup,
  encodeGroup,
  GROUP_BLOCKS,
  GROUP_MASK,
  GROUP_SHIFT,
  groupKey,
} from '../../../agent/engine/store/group-record';

async function withDb(
  poolDir: string,
  name: string,
  encoding: 'msgpack' | 'binary',
  fn: (db: { get(k: unknown): unknown; put(k: unknown, v: unknown): Promise<boolean> }) => Promise<unknown>,
): Promise<void> {
  const root = open({ path: path.join(poolDir, 'meta'), maxDbs: 16, compression: false });
  try {
    await fn(root.openDB({ name, encoding, keyEncoding: 'ordered-binary' }) as never);
  } finally {
    await root.close();
  }
}

/** Sets fields of a msgpack record (e.g. { v: 2 } for an unknown record version). */
export function patchRecord(poolDir: string, db: string, key: unknown, fields: Record<string, unknown>) {
  return withDb(poolDir, db, 'msgpack', async (d) => d.put(key, { ...(d.get(key) as object), ...fields }));
}

/** Replaces a record with bytes msgpack cannot decode (0xc1 is never used). */
export function garbleRecord(poolDir: string, db: string, key: unknown) {
  return withDb(poolDir, db, 'binary', async (d) => d.put(key, Buffer.from([0xc1, 0xc1, 0xc1])));
}

/**
 * Points an existing map entry (`table`'s for `block`) at `physical`, through the store's own group
 * encoder: a damaged pointer whose LMDB pages stay well formed. Returns the physical block it named.
 */
export async function setMapEntry(
  poolDir: string,
  table: number,
  block: number,
  physical: number,
): Promise<number> {
  const root = open({ path: path.join(poolDir, 'meta'), maxDbs: 16, compression: false });
  try {
    const db = root.openDB({ name: 'map-groups', encoding: 'binary', keyEncoding: 'binary' });
    const key = groupKey(table, block >>> GROUP_SHIFT);
    const physicals = new Array<number>(GROUP_BLOCKS).fill(-1);
    for (const [offset, p] of decodeGroup((db.get(key) as Buffer | undefined) ?? Buffer.alloc(0)))
      physicals[offset] = p;
    const before = physicals[block & GROUP_MASK]!;
    if (before < 0) throw new Error(`table ${table} maps no block ${block}`);
    physicals[block & GROUP_MASK] = physical;
    await db.put(key, encodeGroup(physicals));
    return before;
  } finally {
    await root.close();
  }
}

/** Open file descriptors and memory maps of this process under `dir`. */
export function openedUnder(dir: string): string[] {
  const fdDir = '/proc/self/fd';
  const out: string[] = [];
  for (const fd of fs.readdirSync(fdDir)) {
    try {
      const target = fs.readlinkSync(path.join(fdDir, fd));
      if (target.startsWith(dir)) out.push(`fd ${fd}: ${target}`);
    } catch {
      /* closed meanwhile */
    }
  }
  for (const line of fs.readFileSync('/proc/self/maps', 'utf8').split('\n'))
    if (line.includes(dir)) out.push(`map: ${line.slice(line.indexOf('/'))}`);
  return out;
}
