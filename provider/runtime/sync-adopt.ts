/**
 * `SyncFromSnapshot.get(name, id)`: the sync state of a target the stack did
 * not sync, read from the agent (read-only). The target (by name or uuid)
 * descends from a snapshot of another container: for a plain vdisk or file
 * the nearest such snapshot in its lineage; for a VM, each member's, which
 * all belong to one VM snapshot. The identity report of a sync is not kept
 * on the agent, so `preserved`, `restored`, `identity` and `warnings` are empty.
 */
import type { AgentApi, AgentContainer, AgentSnapshot } from './agent-api';
import { step } from './errors';
import { findContainer } from './find';
import type { SyncOutputs } from './sync-from-snapshot';

/** The nearest snapshot of another container below `container`: where its data comes from. */
async function sourceOf(agent: AgentApi, container: string): Promise<AgentSnapshot | null> {
  const lineage = await step('lineage', container, () => agent.lineage(container));
  return lineage.find((entry) => entry.snapshot && entry.snapshot.container !== container)?.snapshot ?? null;
}

/** The VM snapshot a member snapshot belongs to. */
async function vmSnapshotOf(agent: AgentApi, member: AgentSnapshot): Promise<AgentSnapshot | null> {
  if (member.vmSnapshot === null) return null;
  const owner = await step('read', member.container, () => agent.describe(member.container));
  if (!owner?.memberOf) return null;
  const vm = owner.memberOf.vm;
  const snapshots = await step('list snapshots', vm, () => agent.listSnapshots(vm));
  return snapshots.find((s) => s.id === member.vmSnapshot) ?? null;
}

export async function adoptSync(
  agent: AgentApi,
  targetNameOrUuid: string,
  agentUrl: string | undefined,
): Promise<SyncOutputs | null> {
  const target: AgentContainer | null = await step('read', targetNameOrUuid, () =>
    findContainer(agent, targetNameOrUuid),
  );
  if (target === null) return null;
  let source: AgentSnapshot | null;
  const ids: Record<string, number> = {};
  if (target.type === 'vm') {
    source = null;
    for (const [role, member] of Object.entries(target.members)) {
      const memberSource = await sourceOf(agent, member);
      const vmSnapshot = memberSource ? await vmSnapshotOf(agent, memberSource) : null;
      if (!memberSource || !vmSnapshot || (source && source.uuid !== vmSnapshot.uuid)) continue;
      source = vmSnapshot;
      ids[role] = memberSource.id;
    }
  } else {
    source = await sourceOf(agent, target.name);
    if (source) ids[''] = source.id;
  }
  if (source === null) return null; // not synced from a snapshot: nothing to adopt
  const safety = (await step('list snapshots', target.name, () => agent.listSnapshots(target.name)))
    .filter((s) => s.kind === 'safety')
    .at(-1);
  return {
    target: target.name,
    snapshot: `${source.container}@${source.name}`,
    ...(agentUrl ? { agentUrl } : {}),
    preserved: {},
    restored: [],
    identity: [],
    // The agent keeps no sync's identity report: an adopted sync shows none until its next re-sync.
    references: [],
    warnings: [],
    safetySnapshotRef: safety ? `${safety.container}@${safety.name}` : null,
    generation: target.generation,
    sourceSnapshotUuid: source.uuid,
    sourceSnapshotIds: ids,
    targetUuid: target.uuid,
    inSync: true,
    drift: null,
  };
}
