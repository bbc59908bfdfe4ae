/**
 * The Snapshot resource: a named snapshot of a container (a VM's covers every
 * member at once). Any input change makes a new snapshot (replace), created
 * before the old one is deleted, so a rotated nightly name never leaves a gap.
 */
import type * as dynamic from '@pulumi/pulumi/dynamic';
import type { AgentApi, AgentSnapshot } from './agent-api';
import { checkInputs } from './check';
import { agentFor } from './connections';
import { isNotFound, ProviderError, step } from './errors';
import { findSnapshot } from './find';
import { wording } from './front-end';
import { checkImport, difference, importError, importIdOf, importing, withoutImportId } from './import';
import { changedKeys, readResult } from './inputs';
import { idempotencyKey, verifyCreated } from './keys';
import { preflight } from './preflight';

export interface SnapshotInputs {
  container: string;
  name: string;
  labels?: Record<string, string>;
  agentUrl?: string;
}

export interface SnapshotOutputs extends SnapshotInputs {
  ref: string;
  uuid: string;
  snapshotId: number;
  size: number;
  createdAt: string;
  memberRoles: string[];
}

export async function check(
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
): Promise<dynamic.CheckResult> {
  const failures = checkInputs('snapshot', news);
  if (failures.length > 0) return { inputs: news, failures };
  const inputs = news as Partial<SnapshotInputs>;
  if (importing(olds, news)) {
    const declared = withoutImportId(inputs) as SnapshotInputs;
    const probe = checkImport('snapshot', inputs.container, olds, news, (agent, id) =>
      adoptable(agent, id, declared),
    );
    return { inputs: news, failures: await probe };
  }
  // The container may be created by this same update (its name is known in a preview), and a
  // name already taken cannot be told from a delete-before-replace (the engine re-checks a
  // replacement without its old inputs): the connection and the token are what is certain.
  const probe = preflight(
    'snapshot',
    inputs.container,
    olds,
    news,
    ['container', 'name', 'agentUrl'],
    async () => {},
  );
  return { inputs: news, failures: await probe };
}

export async function diff(
  _id: string,
  olds: SnapshotOutputs,
  news: SnapshotInputs,
): Promise<dynamic.DiffResult> {
  const replaces = changedKeys(olds as never, news as never, ['container', 'name', 'labels', 'agentUrl']);
  // A new name (the nightly rotation) is created before the old one goes; the same container@name must go first.
  const sameRef = !replaces.includes('container') && !replaces.includes('name');
  return { changes: replaces.length > 0, replaces, deleteBeforeReplace: replaces.length > 0 && sameRef };
}

/** A snapshot's outputs from what the agent shows (the Terraform provider uses it too). */
export function outputs(inputs: SnapshotInputs, s: AgentSnapshot): SnapshotOutputs {
  return {
    ...inputs,
    ref: `${s.container}@${s.name}`,
    uuid: s.uuid,
    snapshotId: s.id,
    size: s.size,
    createdAt: s.createdAt,
    memberRoles: Object.keys(s.members).sort(),
  };
}

/** The `import` option's snapshot (`id`: `container@name` or its uuid), when it is the one declared. */
async function adoptable(agent: AgentApi, id: string, inputs: SnapshotInputs): Promise<AgentSnapshot> {
  const s = await step('read snapshot', inputs.container, () => findSnapshot(agent, id));
  if (s === null) throw importError(inputs.container, id, 'snapshot', null);
  const differences = [
    ...difference('container', inputs.container, s.container),
    ...difference('name', inputs.name, s.name),
    ...difference('labels', inputs.labels ?? {}, s.labels),
  ];
  if (differences.length > 0) throw importError(inputs.container, id, 'snapshot', differences);
  return s;
}

export async function create(withImport: SnapshotInputs): Promise<dynamic.CreateResult> {
  const inputs = withoutImportId(withImport);
  const agent = await agentFor(inputs.agentUrl, inputs.container);
  const importId = importIdOf(withImport);
  if (importId !== undefined) {
    const adopted = await adoptable(agent, importId, inputs);
    return { id: adopted.uuid, outs: outputs(inputs, adopted) };
  }
  const ref = `${inputs.container}@${inputs.name}`;
  const made = await step('snapshot', inputs.container, () =>
    agent.snapshot(
      inputs.container,
      inputs.name,
      inputs.labels ?? {},
      idempotencyKey(`snapshot/${ref}`, 'create', inputs),
    ),
  );
  const s = verifyCreated(
    'snapshot',
    ref,
    made,
    await step('read snapshot', inputs.container, () => agent.describeSnapshot(ref)),
  );
  return { id: s.uuid, outs: outputs(inputs, s) };
}

export async function read(id: string, props: SnapshotOutputs): Promise<dynamic.ReadResult> {
  // `Snapshot.get(name, id)`: only the id (`container@name` or a uuid) is known.
  const adopted = typeof props.name !== 'string' || typeof props.container !== 'string';
  const agent = await agentFor(props.agentUrl, adopted ? id : props.container);
  const s = adopted
    ? await step('read snapshot', id, () => findSnapshot(agent, id))
    : await step('read snapshot', props.container, () =>
        agent.describeSnapshot(`${props.container}@${props.name}`),
      );
  if (s === null) return { id: '' };
  if (!adopted && s.uuid !== id) requireRetakenAsDeclared(props, s);
  const live: SnapshotInputs = {
    ...props,
    container: s.container,
    name: s.name,
    labels: props.labels === undefined && Object.keys(s.labels).length === 0 ? undefined : s.labels,
  };
  const {
    ref: _r,
    uuid: _u,
    snapshotId: _i,
    size: _s,
    createdAt: _c,
    memberRoles: _m,
    ...inputs
  } = outputs(live, s);
  return readResult(s.uuid, outputs(live, s), inputs);
}

/**
 * The name now holds another snapshot (deleted and taken again by hand). One that is what this resource
 * declares (same container, name and labels) is this resource now (a new uuid), not gone, so the plan
 * changes its outputs and re-syncs from it instead of creating what exists (refused on every apply).
 * One with other labels is not adopted (a replace or destroy would delete what the operator took):
 * the refresh fails, naming it, why, and the ways out.
 */
function requireRetakenAsDeclared(props: SnapshotOutputs, s: AgentSnapshot): void {
  const differences = difference('labels', props.labels ?? {}, s.labels ?? {});
  if (differences.length === 0) return;
  const ref = `${s.container}@${s.name}`;
  const w = wording();
  throw new ProviderError(
    'read snapshot',
    s.container,
    'NAME_TAKEN',
    `"${ref}" is no longer the snapshot this resource took (uuid ${props.uuid}): it was deleted and taken again by hand ` +
      `(uuid ${s.uuid}), and is not adopted because its labels are not the declared ones (${differences.join('; ')}). ` +
      `To proceed: delete it (snapsync-agent rm ${ref}) to have ${w.apply} take the declared one, ` +
      `take it again with the declared labels (snapsync-agent rm ${ref} && snapsync-agent snapshot ${s.container} ${s.name}${labelOptions(props.labels)}), ` +
      `or ${w.importExisting('snapshot', ref)}`,
  );
}

/** Labels as `snapsync-agent snapshot` takes them. */
const labelOptions = (labels: Record<string, string> | undefined) =>
  Object.entries(labels ?? {})
    .map(([key, value]) => ` --label ${key}=${value}`)
    .join('');

export async function remove(id: string, props: SnapshotOutputs): Promise<void> {
  const agent = await agentFor(props.agentUrl, props.container);
  const ref = `${props.container}@${props.name}`;
  const s = await step('read snapshot', props.container, () => agent.describeSnapshot(ref));
  if (s === null || s.uuid !== id) return; // already gone (or the name was reused): nothing of ours to delete
  try {
    await step('delete snapshot', props.container, () =>
      agent.deleteSnapshot(ref, idempotencyKey(`snapshot/${ref}`, 'delete', id)),
    );
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}
