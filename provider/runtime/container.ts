/**
 * The Container resource, as the dynamic provider runs it. Name, type, agent,
 * clone source and the clone's identity options replace; size, labels and
 * members update in place.
 */

import type * as dynamic from '@pulumi/pulumi/dynamic';
import type { CheckFailure } from '@pulumi/pulumi/dynamic';
import type { IdentityReport, IdentityWarning } from '../../schema';
import type { AgentApi, AgentContainer, CloneOptions, IdentityField, IdentityReference } from './agent-api';
import { allowShrinkHint } from './agent-hints';
import { checkInputs } from './check';
import { agentFor } from './connections';
import { resizeWanted, sizeAsDeclared } from './container-size';
import { isNotFound, ProviderError, step } from './errors';
import { findContainer } from './find';
import { wording } from './front-end';
import { checkImport, difference, importError, importIdOf, importing, withoutImportId } from './import';
import { changedKeys, readResult } from './inputs';
import { idempotencyKey, verifyCreated } from './keys';
import { fail, PreflightFailure, preflight } from './preflight';
import { reportWarnings } from './warnings';

export interface ContainerInputs {
  name: string;
  type: 'vm' | 'vdisk' | 'file';
  size?: number;
  members?: Record<string, string>;
  labels?: Record<string, string>;
  fromSnapshot?: string;
  /** fromSnapshot only: a source value → the clone's, for references the clone cannot take from the source. */
  referenceMap?: Record<string, string>;
  /** fromSnapshot only: names or UUIDs of the source's containers a cloned config may still hold. */
  allowSourceReferences?: string[];
  /** fromSnapshot only. Dangerous: the exact copy, with the source's identity (its MACs, disks, networks). */
  keepIdentity?: boolean;
  allowShrink?: boolean;
  /** On delete, also its snapshots that are no resource of the stack (default: refuse, naming them). */
  deleteSnapshots?: boolean;
  agentUrl?: string;
  /** Attached NBD clients on resize or delete: `fail` (default, IN_USE) or `disconnect` them first. */
  whenAttached?: 'fail' | 'disconnect';
}

/** The identity a clone was given (the clone's report, as a sync's outputs show it); empty for anything else. */
export interface CloneIdentityOutputs {
  /** Every identity field: the clone's value, its status (generated, mapped, …) and the source's. */
  identity: IdentityField[];
  /** References in the cloned configs: the clone's value now, its status and the source's value. */
  references: IdentityReference[];
  warnings: IdentityWarning[];
}

export interface ContainerOutputs extends ContainerInputs, CloneIdentityOutputs {
  uuid: string;
  generation: number;
  parentSnapshot: string | null;
}

/** The clone's identity options are part of how it was made, like its source. */
const CLONE_OPTIONS = ['referenceMap', 'allowSourceReferences', 'keepIdentity'] as const;
const REPLACE_ON = ['name', 'type', 'fromSnapshot', 'agentUrl', ...CLONE_OPTIONS];
const UPDATE_ON = ['size', 'members', 'labels', 'allowShrink', 'deleteSnapshots', 'whenAttached'];

export async function check(
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
): Promise<dynamic.CheckResult> {
  const failures = checkInputs('container', news);
  const inputs = news as Partial<ContainerInputs>;
  if (inputs.type === 'vm' && inputs.size !== undefined && inputs.size !== 0) {
    failures.push({ property: 'size', reason: 'size: a VM has no size of its own; size its members' });
  }
  if (inputs.type !== 'vm' && inputs.members !== undefined && Object.keys(inputs.members).length > 0) {
    failures.push({ property: 'members', reason: 'members: only a VM has members' });
  }
  failures.push(...cloneOptionFailures(inputs));
  if (failures.length > 0) return { inputs: news, failures };
  if (importing(olds, news)) {
    const declared = withoutImportId(inputs) as ContainerInputs;
    const probe = checkImport('container', inputs.name, olds, news, (agent, id) =>
      adoptable(agent, id, declared),
    );
    return { inputs: news, failures: await probe };
  }
  const probe = preflight(
    'container',
    inputs.name,
    olds,
    news,
    ['name', 'type', 'fromSnapshot', 'agentUrl'],
    async (agent) => {
      const name = inputs.name!;
      // (A name already taken is not checked: the engine re-checks a replacement without its old
      // inputs, so a delete-before-replace would look like a clash. Create reports ALREADY_EXISTS.)
      if (updatedInPlace(olds, inputs)) {
        const refusal = await shrinkRefusal(agent, olds, inputs as ContainerInputs);
        if (refusal !== null) throw new PreflightFailure('size', refusal);
      }
      if (inputs.fromSnapshot) {
        const source = await step('read snapshot', name, () => agent.describeSnapshot(inputs.fromSnapshot!));
        if (source === null) {
          fail(
            'fromSnapshot',
            'clone',
            name,
            'NOT_FOUND',
            `snapshot "${inputs.fromSnapshot}" does not exist`,
          );
        }
        if (source.containerType !== inputs.type) {
          fail(
            'fromSnapshot',
            'clone',
            name,
            'TYPE_MISMATCH',
            `${inputs.fromSnapshot} is a snapshot of a ${source.containerType}, not a ${inputs.type}`,
          );
        }
      }
    },
  );
  return { inputs: news, failures: await probe };
}

/** The clone's identity options say how fromSnapshot clones: without it they would do nothing. */
function cloneOptionFailures(inputs: Partial<ContainerInputs>): CheckFailure[] {
  const failures: CheckFailure[] = [];
  if (inputs.fromSnapshot === undefined) {
    for (const option of CLONE_OPTIONS.filter((o) => inputs[o] !== undefined)) {
      failures.push({
        property: option,
        reason: `${option}: only with ${wording().fromSnapshot} (it says how the clone gets its identity)`,
      });
    }
  } else if (
    inputs.keepIdentity === true &&
    (inputs.referenceMap !== undefined || inputs.allowSourceReferences !== undefined)
  ) {
    failures.push({
      property: 'keepIdentity',
      reason:
        'keepIdentity: the exact copy maps nothing, so it takes no reference map nor allowed source references',
    });
  }
  return failures;
}

/** keepIdentity false is the default: declaring it is no change. */
const cloneOptionsOf = (inputs: Partial<ContainerInputs>) => ({
  ...inputs,
  keepIdentity: inputs.keepIdentity === true ? true : undefined,
});

/** An update of the container the old inputs describe (not a create, nor a replacement). */
function updatedInPlace(olds: Record<string, unknown>, news: Partial<ContainerInputs>): boolean {
  if (Object.keys(olds ?? {}).length === 0) return false;
  return changedKeys(cloneOptionsOf(olds) as never, cloneOptionsOf(news) as never, REPLACE_ON).length === 0;
}

/**
 * The error an update's resize would end in (a shrink without allowShrink), or null: a preview or
 * plan fails with it, rather than promise an update every apply refuses. `olds`: the prior size.
 */
export async function shrinkRefusal(
  agent: AgentApi,
  olds: Partial<ContainerInputs>,
  news: ContainerInputs,
): Promise<ProviderError | null> {
  if (news.type === 'vm' || typeof news.size !== 'number' || news.allowShrink === true) return null;
  const c = await step('read', news.name, () => agent.describe(news.name));
  if (c === null || c.type === 'vm' || news.size >= c.size) return null;
  if (!(await resizeWanted(agent, c, olds.size, news.size))) return null;
  const detail = `shrinking "${c.name}" from ${c.size} to ${news.size} bytes discards data; ${allowShrinkHint()}`;
  return new ProviderError('resize', news.name, 'INVALID_ARGUMENT', detail);
}

export async function diff(
  _id: string,
  olds: ContainerOutputs,
  news: ContainerInputs,
): Promise<dynamic.DiffResult> {
  const replaces = changedKeys(cloneOptionsOf(olds) as never, cloneOptionsOf(news) as never, REPLACE_ON);
  const updates = changedKeys(olds as never, news as never, UPDATE_ON);
  // A replacement under the same name must delete first (the agent refuses a second container of that name).
  return {
    changes: replaces.length + updates.length > 0,
    replaces,
    deleteBeforeReplace: replaces.length > 0 && !replaces.includes('name'),
  };
}

/**
 * The VM's roles whose member is the VM's own, not a resource of its own: one a sync created for a
 * role the VM lacked, and, for a clone (`cloned`), each member the clone made (`<vm>-<role>`).
 */
function ownMemberRoles(c: AgentContainer, cloned: boolean): Set<string> {
  const made = cloned ? Object.keys(c.members).filter((role) => c.members[role] === `${c.name}-${role}`) : [];
  return new Set([...(c.syncCreatedMembers ?? []), ...made]);
}

/**
 * The VM's members as the declaration sees them: a member the VM's syncs or its clone made goes with
 * the VM, so it is no drift unless its role is declared.
 */
export function declaredMembers(
  c: AgentContainer,
  declared: Record<string, string> | undefined,
  cloned = false,
): Record<string, string> {
  const own = ownMemberRoles(c, cloned);
  return Object.fromEntries(
    Object.entries(c.members).filter(([role]) => !own.has(role) || declared?.[role] !== undefined),
  );
}

/** A declared VM's members as read; none declared and none but its own (a clone's) is no drift (undefined vs {}). */
function liveMembers(c: AgentContainer, props: ContainerInputs): Record<string, string> | undefined {
  const members = declaredMembers(c, props.members, props.fromSnapshot !== undefined);
  return props.members === undefined && Object.keys(members).length === 0 ? undefined : members;
}

/** A clone's report as outputs; nothing for a container that is no clone, or kept the source's identity. */
function cloneIdentity(report: IdentityReport | null | undefined): CloneIdentityOutputs {
  return {
    identity: report?.fields ?? [],
    references: report?.references ?? [],
    warnings: report?.warnings ?? [],
  };
}

/** The clone's report as the state has it (a state written before there was one: none). */
function carried(props: Partial<CloneIdentityOutputs>): CloneIdentityOutputs {
  return {
    identity: props.identity ?? [],
    references: props.references ?? [],
    warnings: props.warnings ?? [],
  };
}

/** `identity`: the report the clone was made with (the agent keeps none: later reads carry it on). */
function outputs(
  inputs: ContainerInputs,
  c: AgentContainer,
  identity: CloneIdentityOutputs,
): ContainerOutputs {
  return {
    ...inputs,
    identity: identity.identity,
    references: identity.references,
    warnings: identity.warnings,
    uuid: c.uuid,
    generation: c.generation,
    parentSnapshot: c.parentSnapshot ? `${c.parentSnapshot.container}@${c.parentSnapshot.name}` : null,
  };
}

/**
 * The `import` option's container (`id`: its name or uuid), when it is what the inputs declare:
 * everything the next update would change on the agent (labels, members, a declared size) must match.
 */
async function adoptable(agent: AgentApi, id: string, inputs: ContainerInputs): Promise<AgentContainer> {
  const c = await step('read', inputs.name, () => findContainer(agent, id));
  if (c === null) throw importError(inputs.name, id, 'container', null);
  const differences = await declaredDifferences(agent, c, inputs);
  if (differences.length > 0) throw importError(inputs.name, id, 'container', differences);
  return c;
}

/** Each way the container differs from what the inputs declare (empty: it is the declared container). */
async function declaredDifferences(
  agent: AgentApi,
  c: AgentContainer,
  inputs: ContainerInputs,
): Promise<string[]> {
  const differences = [
    ...difference('name', inputs.name, c.name),
    ...difference('type', inputs.type, c.type),
    // A size a sync's source gave it is one the next update leaves (container-size.ts).
    ...(inputs.size === undefined || c.type === 'vm'
      ? []
      : difference('size', inputs.size, await sizeAsDeclared(agent, c, inputs.size))),
    ...difference('labels', inputs.labels ?? {}, c.labels),
    ...(c.type === 'vm'
      ? difference(
          'members',
          inputs.members ?? {},
          declaredMembers(c, inputs.members, inputs.fromSnapshot !== undefined),
        )
      : []),
  ];
  if (inputs.fromSnapshot) {
    const lineage = await step('lineage', c.name, () => agent.lineage(c.name));
    const cloned = lineage.some(
      (e) => e.snapshot && `${e.snapshot.container}@${e.snapshot.name}` === inputs.fromSnapshot,
    );
    if (!cloned)
      differences.push(
        `fromSnapshot: declared ${inputs.fromSnapshot}, the container does not descend from it`,
      );
  }
  return differences;
}

/**
 * The name holds another container than the one the stack made (deleted and created again by hand).
 * One that is what the resource declares is that resource now (a new uuid): the plan updates what
 * depends on it (a sync into it re-syncs) instead of creating what exists, which the agent refuses on
 * every apply. One that differs is not adopted (a later replace or destroy would delete what the
 * operator made): the refresh fails, naming the differences and the ways out.
 */
async function requireRecreatedAsDeclared(
  agent: AgentApi,
  c: AgentContainer,
  props: ContainerOutputs,
): Promise<void> {
  const differences = await declaredDifferences(agent, c, stripOutputs(props));
  if (differences.length === 0) return;
  const w = wording();
  throw new ProviderError(
    'read',
    c.name,
    'NAME_TAKEN',
    `"${c.name}" is no longer the container this resource made (uuid ${props.uuid}): it was deleted and another ` +
      `${c.type} was created under its name (uuid ${c.uuid}), which is not adopted because it differs from the declaration ` +
      `(${differences.join('; ')}). To proceed: delete it (snapsync-agent rm ${c.name}) to have ${w.apply} create the ` +
      `declared one, give it the declared attributes, or ${w.importExisting('container', c.name)}`,
  );
}

/** All or nothing: a step that fails after the container exists deletes it again. */
export async function create(withImport: ContainerInputs): Promise<dynamic.CreateResult> {
  const inputs = withoutImportId(withImport);
  const agent = await agentFor(inputs.agentUrl, inputs.name);
  const importId = importIdOf(withImport);
  if (importId !== undefined) {
    const adopted = await adoptable(agent, importId, inputs);
    // The identity a clone the stack did not make was given is not known.
    return { id: adopted.uuid, outs: outputs(inputs, adopted, cloneIdentity(null)) };
  }
  const key = (op: string, ...state: unknown[]) =>
    idempotencyKey(`container/${inputs.name}`, op, inputs, ...state);
  if (inputs.fromSnapshot) {
    const source = await step('read snapshot', inputs.name, () =>
      agent.describeSnapshot(inputs.fromSnapshot!),
    );
    if (source && source.containerType !== inputs.type) {
      throw new ProviderError(
        'clone',
        inputs.name,
        'TYPE_MISMATCH',
        `${inputs.fromSnapshot} is a snapshot of a ${source.containerType}, not a ${inputs.type}`,
      );
    }
  }
  const made = inputs.fromSnapshot
    ? await step('clone', inputs.name, () =>
        agent.clone(
          inputs.fromSnapshot!,
          inputs.name,
          inputs.labels ?? {},
          key('clone'),
          cloneOptions(inputs),
        ),
      )
    : await step('create', inputs.name, () =>
        agent.createContainer(
          {
            name: inputs.name,
            type: inputs.type,
            size: inputs.type === 'vm' ? undefined : (inputs.size ?? 0),
            labels: inputs.labels,
            // One call: a VM is never left on the agent with some of its members (a failed step, a crash).
            members: inputs.type === 'vm' ? inputs.members : undefined,
          },
          key('create'),
        ),
      );
  reportWarnings('container', inputs.name, made.warnings);
  let c = verifyCreated(
    inputs.fromSnapshot ? 'clone' : 'create',
    inputs.name,
    made,
    await step('read', inputs.name, () => agent.describe(inputs.name)),
  );
  const created = c.uuid;
  const identity = cloneIdentity(made.identity);
  try {
    if (inputs.fromSnapshot && inputs.size !== undefined && inputs.size !== c.size && inputs.type !== 'vm') {
      c = await step('resize', inputs.name, () =>
        agent.resize(inputs.name, inputs.size!, false, key('resize', created)),
      );
      reportWarnings('container', inputs.name, c.warnings);
    }
    for (const [role, member] of Object.entries(inputs.members ?? {})) {
      if (c.members[role] === member) continue;
      c = await step('add member', inputs.name, () =>
        agent.addMember(inputs.name, role, member, key('member', created, role, member)),
      );
    }
  } catch (err) {
    // Members are containers of their own: remove() detaches them before deleting the VM.
    await remove(created, outputs(inputs, c, identity)).catch(() => {}); // the step's own error is the one to report
    throw err;
  }
  return { id: c.uuid, outs: outputs(inputs, c, identity) };
}

/** The clone's identity options as the agent takes them (none given: an identity of its own, nothing mapped). */
function cloneOptions(inputs: ContainerInputs): CloneOptions {
  return Object.fromEntries(CLONE_OPTIONS.filter((o) => inputs[o] !== undefined).map((o) => [o, inputs[o]]));
}

export async function read(id: string, props: ContainerOutputs): Promise<dynamic.ReadResult> {
  // `Container.get(name, id)`: only the id (a name or a uuid) is known; everything else comes from the agent.
  const adopted = typeof props.name !== 'string';
  const agent = await agentFor(props.agentUrl, adopted ? id : props.name);
  const c = adopted
    ? await step('read', id, () => findContainer(agent, id))
    : await step('read', props.name, () => agent.describe(props.name));
  if (c === null) return { id: '' };
  if (!adopted && c.uuid !== id) await requireRecreatedAsDeclared(agent, c, props);
  const live: ContainerInputs = {
    ...props,
    name: c.name,
    type: c.type,
    // Only a declared size can drift: a file without one grows with its writes. The size a sync's
    // source gave the container is no drift either (container-size.ts).
    size:
      c.type === 'vm' || (props.size === undefined && !adopted)
        ? props.size
        : adopted
          ? c.size
          : await sizeAsDeclared(agent, c, props.size),
    // No labels declared and none on the agent is no drift (undefined vs {}).
    labels: props.labels === undefined && Object.keys(c.labels).length === 0 ? undefined : c.labels,
    // A lookup shows every member; a declared VM, those its declaration covers.
    members: c.type !== 'vm' ? props.members : adopted ? c.members : liveMembers(c, props),
  };
  return readResult(c.uuid, outputs(live, c, carried(props)), stripOutputs(live));
}

export async function update(
  _id: string,
  olds: ContainerOutputs,
  withImport: ContainerInputs,
): Promise<dynamic.UpdateResult> {
  const news = withoutImportId(withImport); // an import option left in the program is no output
  const agent = await agentFor(news.agentUrl, news.name);
  const key = (op: string, ...state: unknown[]) =>
    idempotencyKey(`container/${news.name}`, op, olds, news, ...state);
  let c = await step('read', news.name, () => agent.describe(news.name));
  if (c === null)
    throw new ProviderError(
      'update',
      news.name,
      'NOT_FOUND',
      `the container is gone; run \`${wording().refresh}\``,
    );
  if (news.type !== 'vm' && (await resizeWanted(agent, c, olds.size, news.size))) {
    c = await step('resize', news.name, () =>
      agent.resize(
        news.name,
        news.size!,
        news.allowShrink === true,
        key('resize'),
        news.whenAttached === 'disconnect',
      ),
    );
    reportWarnings('container', news.name, c.warnings);
  }
  if (JSON.stringify(news.labels ?? {}) !== JSON.stringify(c.labels)) {
    c = await step('set labels', news.name, () =>
      agent.setLabels(news.name, news.labels ?? {}, key('labels')),
    );
  }
  if (news.type === 'vm') {
    const wanted = news.members ?? {};
    for (const role of Object.keys(declaredMembers(c, wanted, news.fromSnapshot !== undefined))) {
      if (wanted[role] !== c.members[role]) {
        c = await step('remove member', news.name, () =>
          agent.removeMember(news.name, role, key('unmember', role)),
        );
      }
    }
    for (const [role, member] of Object.entries(wanted)) {
      if (c.members[role] !== member) {
        c = await step('add member', news.name, () =>
          agent.addMember(news.name, role, member, key('member', role, member)),
        );
      }
    }
  }
  return { outs: outputs(news, c, carried(olds)) };
}

export async function remove(id: string, props: ContainerOutputs): Promise<void> {
  const agent = await agentFor(props.agentUrl, props.name);
  const c = await step('read', props.name, () => agent.describe(props.name));
  if (c === null || c.uuid !== id) return; // already gone: delete is idempotent
  const key = (op: string, ...state: unknown[]) =>
    idempotencyKey(`container/${props.name}`, op, id, ...state);
  if (props.deleteSnapshots !== true) await refuseOperatorSnapshots(agent, props.name);
  try {
    // Members are resources of their own: detach them so deleting the VM leaves them to their own delete.
    // Not those a sync or its clone made: they hold the source's data, nobody else has them, they go with the VM.
    const own = ownMemberRoles(c, props.fromSnapshot !== undefined);
    for (const role of Object.keys(c.members).filter((r) => !own.has(r))) {
      await step('remove member', props.name, () =>
        agent.removeMember(props.name, role, key('unmember', role)),
      );
    }
    // Recursive: its safety snapshots (and, with deleteSnapshots, any other) go with it; snapshots other
    // containers read through are kept hidden by the agent.
    // A VM's member whose resource is deleted leaves its VM (the plan may delete it before it updates the VM's
    // members: refusing would wedge every apply), and its part of the VM's snapshots goes with it.
    await step('delete', props.name, () =>
      agent.deleteContainer(
        props.name,
        true,
        key('delete'),
        props.whenAttached === 'disconnect',
        c.memberOf !== null,
      ),
    );
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

/**
 * A delete takes the container's snapshots with it. The stack's own are gone by then (a snapshot
 * resource depends on its container) and its syncs' safety snapshots may go, but one an operator took
 * (or another stack's) is never deleted silently: the delete is refused naming them, as `rm` is
 * without --recursive.
 */
async function refuseOperatorSnapshots(agent: AgentApi, name: string): Promise<void> {
  const snapshots = await step('list snapshots', name, () => agent.listSnapshots(name));
  // A member's part of a VM snapshot is the VM's: the VM's delete refuses it (a member resource deleted
  // alone leaves its VM and its part of the VM's snapshots, as documented).
  const kept = snapshots
    .filter((s) => s.kind === 'user' && !s.hidden && s.vmSnapshot === null)
    .map((s) => `${s.container}@${s.name}`);
  if (kept.length === 0) return;
  const w = wording();
  throw new ProviderError(
    'delete',
    name,
    'HAS_DEPENDENTS',
    `"${name}" has snapshots that are no resource here (taken by hand?): ${kept.join(', ')}; deleting it would delete them, so it was not deleted. ` +
      `To proceed: delete them (snapsync-agent rm ${kept[0]}), or set ${w.setting('deleteSnapshots', 'true')} on this resource ` +
      `(\`${w.apply}\` records it) to have them deleted with it; then run \`${w.destroy}\` (or \`${w.apply}\`) again`,
  );
}

function stripOutputs(o: ContainerInputs & Partial<ContainerOutputs>): ContainerInputs {
  const {
    uuid: _u,
    generation: _g,
    parentSnapshot: _p,
    identity: _i,
    references: _r,
    warnings: _w,
    ...inputs
  } = o;
  return inputs;
}
