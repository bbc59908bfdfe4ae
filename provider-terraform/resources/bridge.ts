/**
 * One Terraform resource over one resource of the provider runtime
 * (provider/runtime): the runtime decides (check, diff, create, read, update,
 * delete — the same code the Pulumi provider runs); this file only translates
 * between Terraform's states (snake_case attributes, nulls, unknowns) and the
 * runtime's inputs and outputs (camelCase, absent keys, Pulumi's unknown).
 */
import type * as dynamic from '@pulumi/pulumi/dynamic';
import { changedKeys, UNKNOWN as RUNTIME_UNKNOWN } from '../../provider/runtime/inputs';
import type { BlockSpec } from '../schema';
import { type CtyValue, isUnknown, UNKNOWN } from '../wire/cty';

export type State = { [attribute: string]: CtyValue };

export interface RuntimeResource {
  check(olds: unknown, news: Record<string, unknown>): Promise<dynamic.CheckResult>;
  diff(id: string, olds: never, news: never): Promise<dynamic.DiffResult>;
  create(inputs: never): Promise<dynamic.CreateResult>;
  read(id: string, props: never): Promise<dynamic.ReadResult>;
  update?(id: string, olds: never, news: never): Promise<dynamic.UpdateResult>;
  remove(id: string, props: never): Promise<void>;
}

export interface ResourceBinding {
  typeName: string;
  schema: BlockSpec;
  runtime: RuntimeResource;
  /** Configurable attribute → the runtime's input key. */
  inputs: Record<string, string>;
  /** Computed attribute → the runtime's output key (`id` is the runtime's id). */
  outputs: Record<string, string>;
  /** Computed attributes an in-place update may change (planned as unknown). */
  changedByUpdate: string[];
  /**
   * Computed attribute → the configurable attributes an update changes it through (planned as
   * unknown when one of them changes): the plan must not promise a value the apply then replaces.
   */
  changedWith?: Record<string, string[]>;
  /**
   * The error the apply of an in-place update would end in, asked of the agent at plan time (the
   * runtime's inputs): the plan fails with it instead of promising an update the apply refuses.
   */
  updateRefusal?(olds: Record<string, unknown>, news: Record<string, unknown>): Promise<Error | null>;
  /**
   * Optional and computed attributes with a default: unset in the configuration, they plan the
   * default (not the prior value Terraform proposes), so unsetting one goes back to it.
   */
  defaults?: Record<string, CtyValue>;
  /** `tofu import` / `import {}`: the state of the object the import id names. */
  importState(id: string): Promise<{ id: string; outs: Record<string, unknown> }>;
  /** The import id of the object a (planned or prior) state describes; diagnostics name it too. */
  importId(state: State): string;
}

export interface Planned {
  planned: State | null;
  requiresReplace: string[];
}

/** Terraform value → runtime value: unknowns become Pulumi's unknown, nulls absent. */
function runtimeValue(v: CtyValue): unknown {
  if (isUnknown(v)) return RUNTIME_UNKNOWN;
  if (Array.isArray(v)) return v.map(runtimeValue);
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, runtimeValue(x as CtyValue)]));
  }
  return v;
}

export class BridgedResource {
  constructor(readonly binding: ResourceBinding) {}

  private reverse(key: string): string {
    const all = { ...this.binding.inputs, ...this.binding.outputs };
    return Object.keys(all).find((a) => all[a] === key) ?? key;
  }

  toInputs(state: State): Record<string, unknown> {
    const inputs: Record<string, unknown> = {};
    for (const [attribute, key] of Object.entries(this.binding.inputs)) {
      const v = state[attribute];
      if (v !== null && v !== undefined) inputs[key] = runtimeValue(v);
    }
    return inputs;
  }

  toOutputs(state: State): Record<string, unknown> {
    const outputs = this.toInputs(state);
    for (const [attribute, key] of Object.entries(this.binding.outputs)) {
      const v = state[attribute];
      if (v !== null && v !== undefined) outputs[key] = runtimeValue(v);
    }
    return outputs;
  }

  fromRuntime(id: string, outs: Record<string, unknown>): State {
    const state: State = { id };
    for (const [attribute, key] of Object.entries({ ...this.binding.inputs, ...this.binding.outputs })) {
      state[attribute] = (outs[key] ?? null) as CtyValue;
    }
    return state;
  }

  /** Validation failures as [attribute, message] (the attribute in Terraform's spelling). */
  async validate(config: State): Promise<Array<[string, string]>> {
    const { failures } = await this.binding.runtime.check(undefined, this.toInputs(config));
    return (failures ?? []).map((f) => [
      this.reverse(f.property),
      f.reason.replace(new RegExp(`^${f.property}\\b`), this.reverse(f.property)),
    ]);
  }

  async plan(prior: State | null, proposedByCli: State | null, config: State | null): Promise<Planned> {
    if (proposedByCli === null) return { planned: null, requiresReplace: [] };
    const proposed = this.withDefaults(proposedByCli, config);
    const computed = ['id', ...Object.keys(this.binding.outputs)];
    const unknownOf = (names: string[]) => Object.fromEntries(names.map((n) => [n, UNKNOWN]));
    if (prior === null) return { planned: { ...proposed, ...unknownOf(computed) }, requiresReplace: [] };
    const diff = await this.binding.runtime.diff(
      String(prior.id),
      this.toOutputs(prior) as never,
      this.toInputs(proposed) as never,
    );
    const replaces = (diff.replaces ?? []).map((k) => this.reverse(k));
    if (replaces.length > 0)
      return { planned: { ...proposed, ...unknownOf(computed) }, requiresReplace: replaces };
    if (diff.changes) {
      const refusal = await this.binding.updateRefusal?.(this.toOutputs(prior), this.toInputs(proposed));
      if (refusal) throw refusal;
      const changing = [...this.binding.changedByUpdate, ...this.changedThrough(prior, proposed)];
      return { planned: { ...proposed, ...unknownOf(changing) }, requiresReplace: [] };
    }
    return { planned: proposed, requiresReplace: [] };
  }

  /**
   * An attribute with a default that the configuration leaves unset plans its default once it has a
   * value (an unset one stays unset: the runtime applies the default).
   */
  private withDefaults(proposed: State, config: State | null): State {
    const planned = { ...proposed };
    for (const [attribute, value] of Object.entries(this.binding.defaults ?? {})) {
      const unset = config?.[attribute] === null || config?.[attribute] === undefined;
      if (unset && planned[attribute] !== null && planned[attribute] !== undefined)
        planned[attribute] = value;
    }
    return planned;
  }

  /** The computed attributes of `changedWith` whose configurable attributes the update changes. */
  private changedThrough(prior: State, proposed: State): string[] {
    const olds = this.toOutputs(prior);
    const news = this.toInputs(proposed);
    return Object.entries(this.binding.changedWith ?? {})
      .filter(
        ([, through]) =>
          changedKeys(
            olds,
            news,
            through.map((a) => this.binding.inputs[a]!),
          ).length > 0,
      )
      .map(([attribute]) => attribute);
  }

  async apply(prior: State | null, planned: State | null): Promise<State | null> {
    const { runtime } = this.binding;
    if (planned === null) {
      if (prior !== null) await runtime.remove(String(prior.id), this.toOutputs(prior) as never);
      return null;
    }
    if (prior === null) {
      const { id, outs } = await runtime.create(this.toInputs(planned) as never);
      return withTimeouts(this.fromRuntime(id, outs ?? {}), planned);
    }
    const id = String(prior.id);
    const olds = this.toOutputs(prior) as never;
    const news = this.toInputs(planned) as never;
    // Only the timeouts, or an attribute spelled as its default, changed: nothing to do on the agent
    // (and a snapshot has no update at all); the state records what the plan promised.
    if (!(await runtime.diff(id, olds, news)).changes)
      return withTimeouts({ ...prior, ...known(planned) }, planned);
    if (!runtime.update) throw new Error(`${this.binding.typeName} has no in-place update`);
    const { outs } = await runtime.update(id, olds, news);
    return withTimeouts(this.fromRuntime(id, outs ?? {}), planned);
  }

  /** The object as it is now, or null when it is gone. */
  async read(state: State): Promise<State | null> {
    const result = await this.binding.runtime.read(String(state.id), this.toOutputs(state) as never);
    if (!result.id) return null;
    return withTimeouts(
      this.fromRuntime(result.id, { ...this.toOutputs(state), ...(result.props ?? {}) }),
      state,
    );
  }

  async import(id: string): Promise<State> {
    const { id: runtimeId, outs } = await this.binding.importState(id);
    return this.fromRuntime(runtimeId, outs);
  }
}

/** The state's known values (a plan's unknowns left out). */
function known(state: State): State {
  return Object.fromEntries(Object.entries(state).filter(([, v]) => !isUnknown(v)));
}

/** The `timeouts` block is configuration only (the agent never sees it): carried from state to state. */
function withTimeouts(state: State, from: State): State {
  return { ...state, timeouts: from.timeouts ?? null };
}
