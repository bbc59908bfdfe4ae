/**
 * SyncFromSnapshot and references (provider runtime on a real engine with the
 * identity hooks): a sync that would leave an unmappable reference to
 * production fails with IDENTITY_REFERENCE_UNMAPPED and changes nothing; with
 * a `referenceMap` input it goes through, and the `preserved`, `restored` and
 * `references` outputs list each reference kept and mapped with what
 * production had.
 */
import * as assert from 'node:assert/strict';
import { Pool } from '../../agent/engine';
import * as runtime from '../../provider/runtime';
import type { SyncOutputs } from '../../provider/runtime/sync-from-snapshot';
import { EngineAgent } from '../helpers/engine-agent';
import { createReferenceVms } from '../helpers/reference-vms';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

describe('provider runtime: SyncFromSnapshot keeps references', () => {
  let pool: Pool;

  beforeEach(async () => {
    pool = Pool.create(tempDir(), { blockSize: 4096 });
    const agent = new EngineAgent(pool, true);
    runtime.setConnector(async () => agent);
    await runtime.configure({ get: (key) => ({ 'snapsync:url': 'ws://127.0.0.1:1' })[key] });
  });
  afterEach(async () => {
    runtime.setConnector(null);
    await pool.close();
  });
  after(cleanupTempDirs);

  it('refuses an unmappable reference; with referenceMap the outputs list references kept and mapped', async () => {
    createReferenceVms(pool);
    const inputs = { target: 'staging-app', snapshot: 'prod-app@nightly' };
    await assert.rejects(
      runtime.syncFromSnapshot.create(inputs),
      (err: { code: string; message: string }) => {
        assert.equal(err.code, 'IDENTITY_REFERENCE_UNMAPPED');
        assert.match(err.message, /config\.ethernet2\.networkName = prod-dmz/);
        return true;
      },
    );
    assert.equal(pool.describe('staging-app').generation, 0, 'nothing changed');

    const checked = await runtime.syncFromSnapshot.check(
      {},
      { ...inputs, referenceMap: { 'prod-dmz': 'staging-dmz' } },
    );
    assert.deepEqual(checked.failures, []);
    const bad = await runtime.syncFromSnapshot.check({}, { ...inputs, referenceMap: { 'prod-dmz': '' } });
    assert.ok(
      (bad.failures ?? []).some((f) => f.property.startsWith('referenceMap')),
      JSON.stringify(bad.failures),
    );
    const { outs } = (await runtime.syncFromSnapshot.create({
      ...inputs,
      referenceMap: { 'prod-dmz': 'staging-dmz' },
    })) as { outs: SyncOutputs };
    assert.equal(
      outs.preserved['config.scsi0:0.fileName'],
      '/vmfs/volumes/ds-stage/staging-app-01/staging-app-01.vmdk',
    );
    assert.equal(outs.preserved['config.ethernet2.networkName'], 'staging-dmz');
    assert.ok(outs.restored.includes('config.ethernet0.networkName'));
    assert.ok(outs.restored.includes('config.ethernet2.networkName'));
    assert.deepEqual(
      outs.references.find((r) => r.path === 'config.ethernet0.networkName'),
      {
        path: 'config.ethernet0.networkName',
        value: 'staging-frontend',
        status: 'kept',
        sourceValue: 'prod-frontend',
      },
    );
    assert.equal(outs.references.find((r) => r.path === 'config.ethernet2.networkName')?.status, 'mapped');
    // A changed referenceMap re-syncs in place.
    const diff = await runtime.syncFromSnapshot.diff(outs.targetUuid, outs, {
      ...inputs,
      referenceMap: { 'prod-dmz': 'staging-dmz-2' },
    });
    assert.deepEqual([diff.changes, diff.replaces], [true, []]);
  });
});
