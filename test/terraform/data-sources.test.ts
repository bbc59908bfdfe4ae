/**
 * The data sources as a host reads them, over gRPC with mTLS against a real
 * agent: a container by name, a snapshot by container and name, and a
 * container's snapshots filtered by labels, newest first, with `latest`;
 * a missing container is a diagnostic naming the data source and NOT_FOUND.
 */
import * as assert from 'node:assert/strict';
import {
  containerDataSource,
  type DataSource,
  snapshotDataSource,
  snapshotsDataSource,
} from '../../provider-terraform/data-sources/data-sources';
import { objectType } from '../../provider-terraform/schema';
import { decode, encode } from '../../provider-terraform/wire/cty';
import { pluginOnAgent } from './plugin-on-agent';

type Diagnostic = { severity: string | number; summary: string; detail: string };
type Response = { state: { msgpack: Buffer } | null; diagnostics: Diagnostic[] } & Record<string, unknown>;
type Snap = { ref: string; name: string; labels: Record<string, string>; created_at: string };

describe('terraform provider: data sources over gRPC against a real agent', () => {
  const on = pluginOnAgent<Response>(async (hand) => {
    await hand.call('createContainer', {
      name: 'ds-disk',
      type: 'vdisk',
      size: 1 << 20,
      labels: { env: 'prod' },
    });
    // Two nightlies and a manual one, in this order (the agent stamps createdAt).
    for (const [name, labels] of [
      ['nightly-1', { kind: 'nightly' }],
      ['manual', { kind: 'manual' }],
      ['nightly-2', { kind: 'nightly' }],
    ] as const) {
      await hand.call('snapshot', { container: 'ds-disk', name, labels });
    }
  });
  const rpc = on.rpc;
  const read = async (d: DataSource, config: object) => {
    const T = objectType(d.schema);
    const r = await rpc('ReadDataSource', { type_name: d.typeName, config: { msgpack: encode(config, T) } });
    return {
      diagnostics: r.diagnostics,
      state: r.state?.msgpack ? (decode(r.state.msgpack, T) as never) : null,
    };
  };

  it('declares the three data sources in the schema and metadata', async () => {
    const schema = await rpc('GetProviderSchema', {});
    assert.deepEqual(Object.keys(schema.data_source_schemas as object).sort(), [
      'snapsync_container',
      'snapsync_snapshot',
      'snapsync_snapshots',
    ]);
    const metadata = await rpc('GetMetadata', {});
    assert.equal((metadata.data_sources as unknown[]).length, 3);
    const T = objectType(containerDataSource.schema);
    const empty = await rpc('ValidateDataResourceConfig', {
      type_name: 'snapsync_container',
      config: { msgpack: encode({ name: '' }, T) },
    });
    assert.match(empty.diagnostics[0]!.summary, /snapsync_container: invalid name/);
  });

  it('reads a container by name', async () => {
    const { diagnostics, state } = await read(containerDataSource, { name: 'ds-disk' });
    assert.deepEqual(diagnostics, []);
    const c = state as unknown as Record<string, unknown>;
    assert.equal(c.type, 'vdisk');
    assert.equal(c.size, 1 << 20);
    assert.deepEqual(c.labels, { env: 'prod' });
    assert.deepEqual(c.members, {});
    assert.equal(c.id, c.uuid);
    assert.equal(typeof c.generation, 'number');
  });

  it('reads a snapshot by container and name', async () => {
    const { diagnostics, state } = await read(snapshotDataSource, { container: 'ds-disk', name: 'manual' });
    assert.deepEqual(diagnostics, []);
    const s = state as unknown as Record<string, unknown>;
    assert.equal(s.ref, 'ds-disk@manual');
    assert.deepEqual(s.labels, { kind: 'manual' });
    assert.equal(s.id, s.uuid);
    assert.equal(s.size, 1 << 20);
    assert.deepEqual(s.member_roles, []);
    const missing = await read(snapshotDataSource, { container: 'ds-disk', name: 'nope' });
    assert.match(missing.diagnostics[0]!.summary, /snapsync_snapshot "ds-disk".*\[NOT_FOUND\]/);
  });

  it('lists snapshots filtered by labels, newest first, with the latest', async () => {
    const nightly = await read(snapshotsDataSource, { container: 'ds-disk', labels: { kind: 'nightly' } });
    assert.deepEqual(nightly.diagnostics, []);
    const state = nightly.state as unknown as { snapshots: Snap[]; latest: Snap };
    assert.deepEqual(
      state.snapshots.map((s) => s.ref),
      ['ds-disk@nightly-2', 'ds-disk@nightly-1'],
    );
    assert.equal(state.latest.ref, 'ds-disk@nightly-2');
    assert.ok(state.snapshots[0]!.created_at >= state.snapshots[1]!.created_at);
    const all = (await read(snapshotsDataSource, { container: 'ds-disk' })).state as unknown as {
      snapshots: Snap[];
    };
    assert.deepEqual(
      all.snapshots.map((s) => s.name),
      ['nightly-2', 'manual', 'nightly-1'],
    );
    const none = (await read(snapshotsDataSource, { container: 'ds-disk', labels: { kind: 'weekly' } }))
      .state as unknown as { snapshots: Snap[]; latest: Snap | null };
    assert.deepEqual(none.snapshots, []);
    assert.equal(none.latest, null);
  });

  it('a missing container is a diagnostic naming the data source and NOT_FOUND', async () => {
    for (const [d, config] of [
      [snapshotsDataSource, { container: 'no-such-disk' }],
      [containerDataSource, { name: 'no-such-disk' }],
    ] as const) {
      const { diagnostics, state } = await read(d, config);
      assert.equal(state, null);
      assert.equal(diagnostics.length, 1);
      assert.match(diagnostics[0]!.summary, new RegExp(`^${d.typeName} "no-such-disk".*\\[NOT_FOUND\\]`));
    }
  });
});
