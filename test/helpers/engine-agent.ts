/**
 * An AgentApi answered in-process by a real engine Pool (with the engine's
 * own idempotency records), for tests of the provider runtime's logic that do
 * not need the wire. The WebSocket agent answers the same calls for real.
 */
import { createHash } from 'node:crypto';
import type { ContainerInfo, MutationOptions, Pool, SnapshotInfo } from '../../agent/engine';
import { createIdentityHooks } from '../../agent/identity';
import type {
  AgentApi,
  AgentContainer,
  AgentSnapshot,
  AgentSyncResult,
  CloneOptions,
} from '../../provider/runtime/agent-api';

// Engine infos and wire shapes are the same JSON (the schemas describe what the engine returns).
const container = (c: ContainerInfo) => JSON.parse(JSON.stringify(c)) as AgentContainer;
const snapshot = (s: SnapshotInfo) => JSON.parse(JSON.stringify(s)) as AgentSnapshot;

export class EngineAgent implements AgentApi {
  /** Every mutating call's key, in order (tests check retries reuse them). */
  readonly keys: string[] = [];

  /** `identity`: run syncs and clones through the identity hooks, as the agent does (default: no hooks). */
  constructor(
    private readonly pool: Pool,
    private readonly identity = false,
  ) {}

  /** Runs a mutation once per key; a replay returns the stored engine result, shaped like a fresh one. */
  private once<R, T>(
    key: string,
    params: unknown,
    run: (options: MutationOptions) => R,
    shape: (r: R) => T,
  ): T {
    this.keys.push(key);
    const fingerprint = createHash('sha256').update(JSON.stringify(params)).digest('hex');
    const earlier = this.pool.idempotent(key);
    if (earlier) {
      if (earlier.fingerprint !== fingerprint)
        throw Object.assign(new Error('key reused'), { code: 'IDEMPOTENCY_CONFLICT' });
      return shape(earlier.result as R);
    }
    return shape(run({ idempotency: { key, fingerprint, expiresAt: Date.now() + 3600_000 } }));
  }

  async describe(name: string) {
    try {
      return container(this.pool.describe(name));
    } catch (err) {
      if ((err as { code?: string }).code === 'NOT_FOUND') return null;
      throw err;
    }
  }
  async createContainer(spec: Parameters<AgentApi['createContainer']>[0], key: string) {
    return this.once(key, spec, (o) => this.pool.createContainer(spec, o), container);
  }
  async addMember(vm: string, role: string, member: string, key: string) {
    return this.once(key, [vm, role, member], (o) => this.pool.addMember(vm, role, member, o), container);
  }
  async removeMember(vm: string, role: string, key: string) {
    return this.once(key, [vm, role], (o) => this.pool.removeMember(vm, role, o), container);
  }
  async resize(name: string, size: number, shrink: boolean, key: string) {
    return this.once(
      key,
      [name, size, shrink],
      (o) => this.pool.resize(name, size, { shrink, ...o }),
      container,
    );
  }
  async setLabels(name: string, labels: Record<string, string>, key: string) {
    return this.once(key, [name, labels], (o) => this.pool.setLabels(name, labels, o), container);
  }
  async deleteContainer(name: string, recursive: boolean, key: string, _force?: boolean, detach?: boolean) {
    this.once(
      key,
      [name, recursive, detach === true],
      (o) => this.pool.deleteContainer(name, { recursive, detach: detach === true, ...o }),
      () => undefined,
    );
  }
  async clone(
    source: string,
    name: string,
    labels: Record<string, string>,
    key: string,
    options: CloneOptions = {},
  ) {
    // As the agent's handler: the identity hooks give the clone its own identity unless keepIdentity.
    const hooks =
      this.identity && options.keepIdentity !== true
        ? createIdentityHooks('default', {
            referenceMap: options.referenceMap,
            allowSourceReferences: options.allowSourceReferences,
          })
        : undefined;
    return this.once(
      key,
      [source, name, labels, options],
      (o) => this.pool.clone(source, name, { labels, ...(hooks ? { hooks } : {}), ...o }),
      container,
    );
  }
  async snapshot(c: string, name: string, labels: Record<string, string>, key: string) {
    return this.once(key, [c, name, labels], (o) => this.pool.snapshot(c, name, { labels, ...o }), snapshot);
  }
  async describeSnapshot(ref: string) {
    try {
      return snapshot(this.pool.describeSnapshot(ref));
    } catch (err) {
      if ((err as { code?: string }).code === 'NOT_FOUND') return null;
      throw err;
    }
  }
  async deleteSnapshot(ref: string, key: string) {
    this.once(
      key,
      ref,
      (o) => this.pool.deleteSnapshot(ref, o),
      () => undefined,
    );
  }
  async sync(target: string, source: string, options: Parameters<AgentApi['sync']>[2], key: string) {
    return this.once(
      key,
      [target, source, options],
      (o) =>
        this.pool.sync(target, source, {
          safetySnapshot: options.safetySnapshot,
          members: options.members,
          ...(this.identity
            ? {
                hooks: createIdentityHooks(options.preserve, {
                  referenceMap: options.referenceMap,
                  allowSourceReferences: options.allowSourceReferences,
                }),
              }
            : {}),
          ...o,
        }),
      (r) => JSON.parse(JSON.stringify(r)) as AgentSyncResult,
    );
  }
  async revert(c: string, s: string, key: string) {
    return this.once(key, [c, s], (o) => this.pool.revert(c, s, o), container);
  }
  async lineage(name: string) {
    return this.pool
      .lineage(name)
      .map((l) => ({ table: l.table, kind: l.kind, snapshot: l.snapshot && snapshot(l.snapshot) }));
  }
  async listContainers() {
    return this.pool.listContainers().map(container);
  }
  async listSnapshots(name: string) {
    return this.pool.listSnapshots(name).map(snapshot);
  }
  async close() {}
}
