/**
 * Attachments as the agent enforces them: before an operation that would
 * change what an attached NBD writer sees (sync, revert, resize, delete,
 * flatten, import onto a container), the vdisk sessions it would affect are
 * looked up by uuid. Without `force` the operation is refused with IN_USE
 * naming them, and nothing changes; with `force` they are drained and
 * disconnected first (their acknowledged writes are flushed into the state
 * before the operation), then it runs — but only once a rehearsal of the
 * operation (EngineCore.rehearse, or the import's file checks) shows it
 * would not be refused: a forced sync naming a snapshot that does not
 * exist, or that the identity checks refuse, disconnects no one. Their exports are fenced before they
 * are disconnected (agent/nbd/fences.ts): a hypervisor's NBD client that
 * reconnects by name on its own is refused until the operator lifts the
 * fence (`unfence`), so a running guest never reaches the changed disk.
 * Snapshots are not guarded: taking one changes nothing an attached client
 * sees. Nor are snapshot readers: a reader pins its snapshot (engine
 * pins.ts), so deleting it (or its container, recursively) goes ahead, the
 * snapshot is hidden and its name free, the reader keeps reading it exactly,
 * and it is freed when the last reader goes. `force` on deleteSnapshot is
 * accepted and changes nothing.
 */
import type { OpName } from '../../schema';
import { isSnapsyncError, type Pool } from '../engine';
import type { FenceInfo } from '../nbd/fences';
import type { AttachedSession, SessionInfo, SessionRegistry } from '../nbd/sessions';
import { WireError } from './wire-error';

/** Operations that change what attached clients see, and take `force` (deleteSnapshot: accepted, clears nothing). */
export const GUARDED_OPS = [
  'sync',
  'revert',
  'resize',
  'deleteContainer',
  'deleteSnapshot',
  'flatten',
  'import',
] as const satisfies readonly OpName[];
export type GuardedOp = (typeof GUARDED_OPS)[number];

interface Scope {
  containers: Set<string>;
  snapshots: Set<string>;
}

export class Attachments {
  constructor(
    private readonly pool: Pool,
    readonly registry: SessionRegistry,
  ) {}

  /** Sessions of a container (a VM: of its members), or every session; a detached one no longer counts. */
  list(container?: string): SessionInfo[] {
    const all = this.registry.all().filter((s) => !s.detaching);
    if (container === undefined) return all.map((s) => s.info());
    if (all.length === 0) return []; // ls of a large pool with no client attached costs nothing
    const scope = this.scopeOf(container, true);
    return all
      .filter((s) =>
        s.target.kind === 'vdisk' ? scope.containers.has(s.target.uuid) : scope.snapshots.has(s.target.uuid),
      )
      .map((s) => s.info());
  }

  /**
   * Clears the way for `op`: refuses with IN_USE when clients are attached to
   * what it changes, or with `force` disconnects them (drained and flushed),
   * after `rehearse` (throws what the operation would refuse) has passed.
   * Call it holding the operation's container locks, right before the change.
   */
  async clear(op: GuardedOp, params: object, rehearse?: () => void): Promise<void> {
    const p = params as Record<string, unknown>;
    const force = p.force === true;
    let rehearsed = false;
    // A client may attach while others drain: look again until nothing is attached.
    for (;;) {
      const scope = this.scope(op, p);
      const sessions = this.registry.sessionsOn(scope.containers, scope.snapshots);
      if (sessions.length === 0) return;
      if (!force) throw inUse(op, sessions);
      // Nothing is disconnected for an operation that would then be refused.
      if (!rehearsed) rehearse?.();
      rehearsed = true;
      this.fence(op, sessions);
      await Promise.all(sessions.map((s) => s.detach()));
    }
  }

  /**
   * clear(), then waits until no NBD data I/O is in flight (pool.quiesce).
   * Resolves at a moment when nothing is attached to what `op` changes and no
   * request is in flight; the caller's synchronous step runs before anything
   * new can start. While quiesce waits, a client may attach again: then it
   * clears again (refused without force).
   */
  async clearQuiesced(op: GuardedOp, params: object, rehearse?: () => void): Promise<void> {
    for (;;) {
      await this.clear(op, params, rehearse);
      await this.pool.quiesce();
      const scope = this.scope(op, params as Record<string, unknown>);
      if (this.registry.sessionsOn(scope.containers, scope.snapshots).length === 0) return;
    }
  }

  /** Fences the vdisk exports of sessions about to be disconnected (snapshot readers are never detached). */
  private fence(op: GuardedOp, sessions: AttachedSession[]): void {
    const byContainer = new Map<string, { uuid: string; clients: string[] }>();
    for (const s of sessions) {
      if (s.target.kind !== 'vdisk') continue;
      const entry = byContainer.get(s.target.container) ?? { uuid: s.target.uuid, clients: [] };
      entry.clients.push(s.client);
      byContainer.set(s.target.container, entry);
    }
    for (const [container, { uuid, clients }] of byContainer)
      this.registry.fences.fence(container, uuid, op, clients);
  }

  /** Fences on a container (a VM: on its members), or every fence. */
  fences(container?: string): FenceInfo[] {
    const all = this.registry.fences.all();
    if (container === undefined || all.length === 0) return all;
    const names = new Set(this.exportNames(container));
    return all.filter((f) => names.has(f.container));
  }

  /** Lifts the fences on a container (a VM: on its members); a deleted container's name works too. */
  unfence(container: string): FenceInfo[] {
    return this.registry.fences.lift(this.exportNames(container));
  }

  /** The container's name and (a VM) its members' names. */
  private exportNames(container: string): string[] {
    const c = this.lookup(() => this.pool.describe(container));
    return c === null ? [container] : [c.name, ...Object.values(c.members)];
  }

  /** What `op` would change: container uuids (their vdisk sessions); never a snapshot reader (it pins its snapshot). */
  private scope(op: GuardedOp, p: Record<string, unknown>): Scope {
    const name = (key: string) => (typeof p[key] === 'string' ? (p[key] as string) : '');
    switch (op) {
      case 'sync':
        return this.scopeOf(name('target'), false, Array.isArray(p.members) ? (p.members as string[]) : null);
      case 'deleteSnapshot':
        return { containers: new Set(), snapshots: new Set() };
      default:
        return this.scopeOf(name('container'), false);
    }
  }

  /** A container and (a VM) its members, optionally only some roles; with their snapshots when asked. */
  private scopeOf(container: string, withSnapshots: boolean, roles: string[] | null = null): Scope {
    const scope: Scope = { containers: new Set(), snapshots: new Set() };
    const c = this.lookup(() => this.pool.describe(container));
    if (c === null) return scope;
    const names = [c.name];
    for (const [role, member] of Object.entries(c.members))
      if (!roles || roles.includes(role)) names.push(member);
    for (const n of names) {
      const info = this.lookup(() => this.pool.describe(n));
      if (info === null) continue;
      scope.containers.add(info.uuid);
      // Hidden ones too: a deleted snapshot's reader still reads it.
      if (withSnapshots)
        for (const s of this.pool.listSnapshots(n, { includeHidden: true })) scope.snapshots.add(s.uuid);
    }
    return scope;
  }

  /** The value, or null when it does not exist (the operation itself reports that). */
  private lookup<T>(get: () => T): T | null {
    try {
      return get();
    } catch (err) {
      if (isSnapsyncError(err, 'NOT_FOUND') || isSnapsyncError(err, 'INVALID_ARGUMENT')) return null;
      throw err;
    }
  }
}

function inUse(op: GuardedOp, sessions: AttachedSession[]): WireError {
  const infos = sessions.map((s) => s.info());
  const named = infos
    .map((s) => `${s.id} (${s.mode} on ${s.export} from ${s.client} since ${s.since})`)
    .join(', ');
  return new WireError(
    'IN_USE',
    `${op} refused: NBD client(s) attached: ${named}. Stop the VM or disconnect the client(s), ` +
      'or pass force (CLI --force) to disconnect them first',
    { sessions: infos },
  );
}
