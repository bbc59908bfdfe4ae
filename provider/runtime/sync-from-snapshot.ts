/**
 * The SyncFromSnapshot resource: keeps a target container synced to a
 * snapshot, with its own identity preserved. A new snapshot, new triggers or
 * a new preserve list re-sync in place (update, never a replace of the
 * target); refresh reports drift when the target no longer descends from the
 * snapshot, or when the snapshot was deleted and re-taken under the same name
 * (the configuration names the new one: diff and update re-sync to it). Each
 * update keeps only the newest safety snapshot.
 */
import type * as dynamic from '@pulumi/pulumi/dynamic';
import type {
  AgentApi,
  AgentContainer,
  AgentSyncResult,
  IdentityField,
  IdentityReference,
  Preserve,
} from './agent-api';
import { inProviderTerms } from './agent-hints';
import { checkInputs } from './check';
import { agentFor } from './connections';
import { isNotFound, ProviderError, step } from './errors';
import { wording } from './front-end';
import { checkImport, difference, importError, importIdOf, importing, withoutImportId } from './import';
import { changedKeys, readResult } from './inputs';
import { idempotencyKey } from './keys';
import { fail, preflight } from './preflight';
import { adoptSync } from './sync-adopt';

export interface SyncInputs {
  target: string;
  snapshot: string;
  preserve?: Preserve;
  safetySnapshot?: boolean;
  onDelete?: 'keep' | 'revert';
  triggers?: unknown[];
  members?: string[];
  agentUrl?: string;
  /** Attached NBD clients: `fail` (default, IN_USE) or `disconnect` them first. */
  whenAttached?: 'fail' | 'disconnect';
  /** Source value → the target's, for references in synced configs that the target never had. */
  referenceMap?: Record<string, string>;
  /** Names or UUIDs of the source's containers a synced config may still hold. */
  allowSourceReferences?: string[];
}

export interface SyncOutputs extends SyncInputs {
  /** Identity path → the target's own value that the sync kept. */
  preserved: Record<string, string>;
  /** Paths the sync had overwritten and that were written back. */
  restored: string[];
  identity: IdentityField[];
  /** References in the synced configs (kept, mapped or removed), each with what the source had. */
  references: IdentityReference[];
  warnings: Array<{ path: string; code: string; message: string }>;
  safetySnapshotRef: string | null;
  generation: number;
  sourceSnapshotUuid: string;
  /** Role (or "" for a plain vdisk/file) → the member snapshot id the target must descend from. */
  sourceSnapshotIds: Record<string, number>;
  targetUuid: string;
  inSync: boolean;
  drift: string | null;
}

const RESYNC_ON = [
  'snapshot',
  'triggers',
  'preserve',
  'members',
  'safetySnapshot',
  'referenceMap',
  'allowSourceReferences',
];

export async function check(
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
): Promise<dynamic.CheckResult> {
  const failures = checkInputs('sync-from-snapshot', news);
  if (news.onDelete === 'revert' && news.safetySnapshot === false) {
    failures.push({
      property: 'onDelete',
      reason: 'onDelete: "revert" needs safetySnapshot: true (it reverts to it)',
    });
  }
  if (failures.length > 0) return { inputs: news, failures };
  const inputs = news as Partial<SyncInputs>;
  if (importing(olds, news)) {
    const declared = withoutImportId(inputs) as SyncInputs;
    const probe = checkImport('sync', inputs.target, olds, news, (agent, id) =>
      adoptable(agent, id, declared),
    );
    return { inputs: news, failures: await probe };
  }
  // A target not there yet may be created by this same update; a snapshot's ref is not known
  // until it exists, so a known ref must name a snapshot that exists.
  const probe = preflight(
    'sync',
    inputs.target,
    olds,
    news,
    ['target', 'snapshot', 'members', 'agentUrl'],
    async (agent) => {
      const target = inputs.target!;
      const source = await step('read snapshot', target, () => agent.describeSnapshot(inputs.snapshot!));
      if (source === null)
        fail('snapshot', 'sync', target, 'NOT_FOUND', `snapshot "${inputs.snapshot}" does not exist`);
      const live = await step('read', target, () => agent.describe(target));
      if (live && live.type !== source.containerType) {
        fail(
          'target',
          'sync',
          target,
          'TYPE_MISMATCH',
          `cannot sync ${live.type} "${target}" to a snapshot of a ${source.containerType}`,
        );
      }
      const missing = (inputs.members ?? []).filter((role) => !(role in source.members));
      if (missing.length > 0) {
        fail(
          'members',
          'sync',
          target,
          'INVALID_ARGUMENT',
          `snapshot ${inputs.snapshot} has no member ${missing.map((r) => `"${r}"`).join(', ')} (it has ${Object.keys(source.members).join(', ') || 'none'})`,
        );
      }
    },
  );
  return { inputs: news, failures: await probe };
}

/** safetySnapshot true is the default: spelling it out (or an import recording it) is no change. */
const asDefaulted = (inputs: Partial<SyncInputs>) => ({
  ...inputs,
  safetySnapshot: inputs.safetySnapshot === false ? false : undefined,
});

export async function diff(_id: string, olds: SyncOutputs, news: SyncInputs): Promise<dynamic.DiffResult> {
  const replaces = changedKeys(olds as never, news as never, ['target', 'agentUrl']);
  const updates = changedKeys(asDefaulted(olds) as never, asDefaulted(news) as never, [
    ...RESYNC_ON,
    'onDelete',
    'whenAttached',
  ]);
  // A refresh found the target re-synced or reverted by hand, or the snapshot was re-taken since (asked
  // here too: `up` without a refresh, and the apply after a plan that re-created the snapshot, must see it).
  const drifted =
    olds.inSync === false ||
    (replaces.length + updates.length === 0 &&
      (await retaken(await agentFor(news.agentUrl, news.target), olds)) !== null);
  // A replace is a new target (or agent): create-before-delete, so the old sync and its safety snapshot
  // (the undo point) stay until the new sync has succeeded, and a failed replace leaves them intact.
  return { changes: drifted || replaces.length + updates.length > 0, replaces, deleteBeforeReplace: false };
}

async function runSync(agent: AgentApi, inputs: SyncInputs, key: string): Promise<SyncOutputs> {
  const result = await step('sync', inputs.target, () =>
    agent.sync(
      inputs.target,
      inputs.snapshot,
      {
        preserve: inputs.preserve ?? 'default',
        safetySnapshot: inputs.safetySnapshot !== false,
        members: inputs.members,
        ...(inputs.whenAttached === 'disconnect' ? { force: true } : {}),
        ...(inputs.referenceMap ? { referenceMap: inputs.referenceMap } : {}),
        ...(inputs.allowSourceReferences ? { allowSourceReferences: inputs.allowSourceReferences } : {}),
      },
      key,
    ),
  );
  return outputs(inputs, result);
}

function outputs(inputs: SyncInputs, r: AgentSyncResult): SyncOutputs {
  const fields = r.identity?.fields ?? [];
  const references = r.identity?.references ?? [];
  const ids: Record<string, number> = {};
  if (Object.keys(r.source.members).length === 0) ids[''] = r.source.id;
  for (const m of r.members) {
    const role = m.role ?? '';
    ids[role] = role === '' ? r.source.id : r.source.members[role]!;
  }
  return {
    ...inputs,
    // References are identity too: the target's own value for each, and every one the sync wrote back or mapped.
    preserved: Object.fromEntries([
      ...fields.map((f) => [f.path, f.value]),
      ...references.map((f) => [f.path, f.value]),
    ]),
    restored: [
      ...fields.filter((f) => f.status !== 'unchanged').map((f) => f.path),
      ...references.filter((f) => f.status !== 'kept' || f.value !== f.sourceValue).map((f) => f.path),
    ],
    identity: fields,
    references,
    warnings: (r.identity?.warnings ?? []).map((w) => ({ ...w, message: inProviderTerms(w.message) })),
    safetySnapshotRef: r.safetySnapshot ? `${r.safetySnapshot.container}@${r.safetySnapshot.name}` : null,
    generation: r.generation,
    sourceSnapshotUuid: r.source.uuid,
    sourceSnapshotIds: ids,
    targetUuid: r.target.uuid,
    inSync: true,
    drift: null,
  };
}

/**
 * Why the snapshot the configuration names is no longer the one the target was synced to (null: it
 * is, or there is none of that name): it was deleted (the target still reads its data) and a new
 * one taken under the same name.
 */
async function retaken(agent: AgentApi, props: SyncOutputs): Promise<string | null> {
  if (!props.sourceSnapshotUuid) return null;
  const named = await step('read snapshot', props.target, () => agent.describeSnapshot(props.snapshot));
  if (named === null || named.uuid === props.sourceSnapshotUuid) return null;
  return `${props.snapshot} was deleted and taken again (now uuid ${named.uuid}): "${props.target}" still holds the deleted snapshot's data (uuid ${props.sourceSnapshotUuid})`;
}

/**
 * Why the target does not descend from the synced snapshot any more (null: it does), and the target's
 * uuid now (one deleted and created again by hand under its name is the sync's target now: empty).
 */
async function driftOf(
  agent: AgentApi,
  props: SyncOutputs,
): Promise<{ drift: string | null; targetUuid: string } | 'gone'> {
  const target = await step('read', props.target, () => agent.describe(props.target));
  if (target === null) return 'gone';
  return { drift: await lineageDrift(agent, props, target), targetUuid: target.uuid };
}

async function lineageDrift(
  agent: AgentApi,
  props: SyncOutputs,
  target: AgentContainer,
): Promise<string | null> {
  if (props.targetUuid && target.uuid !== props.targetUuid) {
    return `"${props.target}" was deleted and created again (now uuid ${target.uuid}): it holds none of ${props.snapshot}'s data`;
  }
  for (const [role, snapshotId] of Object.entries(props.sourceSnapshotIds)) {
    const container = role === '' ? props.target : target.members[role];
    if (container === undefined) return `member "${role}" was removed from "${props.target}"`;
    const lineage = await step('lineage', container, () => agent.lineage(container));
    // The nearest snapshot of another container is where the data comes from: the container's own
    // snapshots taken since are skipped; an older source further down (a re-sync to a newer
    // snapshot of the same source still has the old one below it) does not count.
    const source = lineage.find(
      (entry) => entry.snapshot && entry.snapshot.container !== container,
    )?.snapshot;
    if (source?.id !== snapshotId) {
      return `"${container}" no longer descends from ${props.snapshot}${source ? ` (it now descends from ${source.container}@${source.name})` : ''}`;
    }
  }
  return retaken(agent, props);
}

/**
 * The `import` option's sync (`id`: the target's name or uuid): the target must descend from the
 * declared snapshot (every declared member). The other inputs (preserve, onDelete, …) are taken as
 * declared; the identity report of a sync the stack did not run is empty until its next re-sync.
 */
async function adoptable(agent: AgentApi, id: string, inputs: SyncInputs): Promise<SyncOutputs> {
  const adopted = await adoptSync(agent, id, inputs.agentUrl);
  if (adopted === null) throw importError(inputs.target, id, 'synced container', null);
  const roles = inputs.members ?? Object.keys(adopted.sourceSnapshotIds);
  const differences = [
    ...difference('target', inputs.target, adopted.target),
    ...difference('snapshot', inputs.snapshot, adopted.snapshot),
    ...roles
      .filter((role) => !(role in adopted.sourceSnapshotIds))
      .map((role) => `members: declared "${role}", that member does not descend from ${adopted.snapshot}`),
  ];
  if (differences.length > 0) throw importError(inputs.target, id, 'synced container', differences);
  const ids = Object.fromEntries(roles.map((role) => [role, adopted.sourceSnapshotIds[role]!]));
  return { ...adopted, ...inputs, sourceSnapshotIds: ids };
}

export async function create(withImport: SyncInputs): Promise<dynamic.CreateResult> {
  const inputs = withoutImportId(withImport);
  const agent = await agentFor(inputs.agentUrl, inputs.target);
  const importId = importIdOf(withImport);
  if (importId !== undefined) {
    const adopted = await adoptable(agent, importId, inputs);
    return { id: adopted.targetUuid, outs: adopted };
  }
  const base = `sync/${inputs.target}`;
  const outs = await runSync(agent, inputs, idempotencyKey(base, 'create', inputs));
  // The answer is believed once the target shows it (it descends from the snapshot).
  const drift = await driftOf(agent, outs);
  if (drift === 'gone' || drift.drift !== null) {
    throw new ProviderError(
      'sync',
      inputs.target,
      'CREATE_NOT_VERIFIED',
      `the agent reported the sync, but ${drift === 'gone' ? `"${inputs.target}" is not there` : drift.drift}; nothing was recorded — run \`${wording().apply}\` again`,
    );
  }
  return { id: outs.targetUuid, outs };
}

export async function read(id: string, props: SyncOutputs): Promise<dynamic.ReadResult> {
  if (typeof props.target !== 'string') {
    // `SyncFromSnapshot.get(name, id)`: only the target (name or uuid) is known.
    const adopted = await adoptSync(await agentFor(props.agentUrl, id), id, props.agentUrl);
    if (adopted === null) return { id: '' };
    const { target, snapshot, agentUrl } = adopted;
    return readResult(adopted.targetUuid, adopted, { target, snapshot, ...(agentUrl ? { agentUrl } : {}) });
  }
  const agent = await agentFor(props.agentUrl, props.target);
  const found = await driftOf(agent, props);
  if (found === 'gone') return { id: '' };
  const { drift, targetUuid } = found;
  if (drift === null) return readResult(id, { ...props, inSync: true, drift: null });
  // Recorded drift makes the next diff a change: `pulumi refresh` shows it, `pulumi up` re-syncs.
  return readResult(id, { ...props, targetUuid, inSync: false, drift });
}

export async function update(
  id: string,
  olds: SyncOutputs,
  withImport: SyncInputs,
): Promise<dynamic.UpdateResult> {
  const news = withoutImportId(withImport); // an import option left in the program is no output
  const agent = await agentFor(news.agentUrl, news.target);
  if (
    olds.inSync !== false &&
    changedKeys(asDefaulted(olds) as never, asDefaulted(news) as never, RESYNC_ON).length === 0 &&
    (await retaken(agent, olds)) === null
  ) {
    return { outs: { ...olds, ...news } }; // only onDelete or whenAttached changed: nothing to do on the agent
  }
  const outs = await runSync(
    agent,
    news,
    idempotencyKey(`sync/${news.target}`, 'update', id, olds.generation, news),
  );
  // Keep only the newest safety snapshot, so a nightly refresh does not pile them up.
  if (olds.safetySnapshotRef && olds.safetySnapshotRef !== outs.safetySnapshotRef) {
    await deleteQuietly(agent, olds.safetySnapshotRef, olds.target);
  }
  return { outs };
}

export async function remove(id: string, props: SyncOutputs): Promise<void> {
  const agent = await agentFor(props.agentUrl, props.target);
  const target = await step('read', props.target, () => agent.describe(props.target));
  if (target === null) return; // the target is gone: nothing to undo
  if (props.onDelete === 'revert') {
    if (!props.safetySnapshotRef) {
      throw new ProviderError(
        'revert',
        props.target,
        'NO_SAFETY_SNAPSHOT',
        'onDelete is "revert" but the sync kept no safety snapshot',
      );
    }
    const snapshot = props.safetySnapshotRef.slice(props.safetySnapshotRef.indexOf('@') + 1);
    try {
      await step('revert', props.target, () =>
        agent.revert(
          props.target,
          snapshot,
          idempotencyKey(`sync/${props.target}`, 'revert', id, props.generation),
          props.whenAttached === 'disconnect',
        ),
      );
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  if (props.safetySnapshotRef) await deleteQuietly(agent, props.safetySnapshotRef, props.target);
}

async function deleteQuietly(agent: AgentApi, ref: string, target: string): Promise<void> {
  try {
    await step('delete safety snapshot', target, () =>
      agent.deleteSnapshot(ref, idempotencyKey(`snapshot/${ref}`, 'delete')),
    );
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}
