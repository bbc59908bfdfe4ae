/**
 * The metadata file check refuses damage (test/cli/damaged-metadata.test.ts),
 * never a healthy store: here, one whose newest meta names a last page the
 * file does not reach, which LMDB writes when a transaction allocates pages
 * and frees them again.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DB } from '../../agent/engine/store/keys';
import { MetadataStore } from '../../agent/engine/store/metadata-store';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

/** Byte offsets in an LMDB meta page (liblmdb/mdb.c, MDB_page_header then MDB_meta). */
const META = { pageSize: 48, lastPage: 144, txnid: 152 } as const;

/** Whether the newest meta's last page is one the file does not reach. */
function lastPagePastEnd(file: string): boolean {
  const bytes = fs.readFileSync(file);
  const pageSize = bytes.readUInt32LE(META.pageSize);
  const newest =
    bytes.readBigUInt64LE(META.txnid) >= bytes.readBigUInt64LE(pageSize + META.txnid) ? 0 : pageSize;
  return bytes.readBigUInt64LE(newest + META.lastPage) >= BigInt(bytes.length / pageSize);
}

describe('metadata file check', () => {
  after(cleanupTempDirs);

  it('opens a healthy store whose last page lies past the end of its file', async () => {
    const dir = path.join(tempDir(), 'meta');
    const store = MetadataStore.open(dir);
    store.commit([{ db: DB.meta, key: 'kept', value: 'yes' }]);
    const value = Buffer.alloc(3000, 1);
    // Transactions that allocate pages and free most of them again: LMDB counts them, never writes them.
    for (let round = 0; round < 30 && !lastPagePastEnd(path.join(dir, 'data.mdb')); round++) {
      const keys = Array.from({ length: 2000 }, (_, i) => `r${round}-${i}`);
      store.commit([
        ...keys.map((key) => ({ db: DB.meta, key, value })),
        ...keys.filter((_, i) => i % 3 !== 0).map((key) => ({ db: DB.meta, key, value: undefined })),
      ]);
      store.commit(keys.map((key) => ({ db: DB.meta, key, value: undefined })));
    }
    await store.close();
    assert.ok(lastPagePastEnd(path.join(dir, 'data.mdb')), 'the file does not show the case under test');

    const again = MetadataStore.openReadOnly(dir);
    assert.equal(again.get(DB.meta, 'kept'), 'yes');
    await again.close();
    const writable = MetadataStore.open(dir);
    assert.equal(writable.get(DB.meta, 'kept'), 'yes');
    await writable.close();
  });
});
