/**
 * Attachments as the agent enforces them: before an operation that would
 * change what an attached NBD client sees (sync, revert, resize, delete,
 * flatten, import onto a container; deleting a snapshot a reader has open),
 * the sessions it would affect are looked up by uuid. Without `force` the
 * operation is refused with IN_USE naming them, and nothing changes; with
 * `force` they are drained and disconnected first (their acknowledged writes
 * are flushed into the state before the operation), then it runs.
 * Snapshots are not guarded: they change nothing an attached client sees.
 */
import type { OpName } from '../../schema';
import { isSnapsyncError, type Pool } from '../engine';
import type { AttachedSession, SessionInfo, SessionRegistry } from '../nbd/sessions';
import { WireError } from './wire-error';

/** Operations that change what attached clients see, and take `force`. */
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
   * what it changes, or with `force` disconnects them (drained and flushed).
   * Call it holding the operation's container locks, right before the change.
   */
  async clear(op: GuardedOp, params: object): Promise<void> {
    const p = params as Record<string, unknown>;
    const force = p.force === true;
    // A client may attach while others drain: look again until nothing is attached.
    for (;;) {
      const scope = this.scope(op, p);
      const sessions = this.registry.sessionsOn(scope.containers, scope.snapshots);
      if (sessions.length === 0) return;
      if (!force) throw inUse(op, sessions);
      await Promise.all(sessions.map((s) => s.detach()));
    }
  }

  /** What `op` would change: container uuids (their vdisk sessions) and snapshot uuids (their readers). */
  private scope(op: GuardedOp, p: Record<string, unknown>): Scope {
    const name = (key: string) => (typeof p[key] === 'string' ? (p[key] as string) : '');
    switch (op) {
      case 'sync':
        return this.scopeOf(name('target'), false, Array.isArray(p.members) ? (p.members as string[]) : null);
      case 'deleteContainer':
        return this.scopeOf(name('container'), p.recursive === true);
      case 'deleteSnapshot':
        return this.snapshotScope(name('snapshot'));
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
      if (withSnapshots) for (const s of this.pool.listSnapshots(n)) scope.snapshots.add(s.uuid);
    }
    return scope;
  }

  /** A snapshot and (a VM snapshot) its member snapshots. */
  private snapshotScope(ref: string): Scope {
    const scope: Scope = { containers: new Set(), snapshots: new Set() };
    const s = this.lookup(() => this.pool.describeSnapshot(ref));
    if (s === null) return scope;
    scope.snapshots.add(s.uuid);
    const members = new Set(Object.values(s.members));
    if (members.size > 0)
      for (const m of this.pool.listSnapshots(undefined, { includeHidden: true }))
        if (members.has(m.id)) scope.snapshots.add(m.uuid);
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
