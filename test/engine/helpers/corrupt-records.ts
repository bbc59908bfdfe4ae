/** Writes records straight into a closed pool's LMDB: what an agent of another version, or a bad disk, leaves. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { open } from 'lmdb';

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
