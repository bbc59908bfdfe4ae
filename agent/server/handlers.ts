/**
 * What each operation does: params (already schema-checked) → engine calls →
 * result. `locks` names the containers an operation must hold. An operation
 * that changes tables or writes data synchronously awaits `pool.quiesce()`
 * right before the engine call, so no NBD request is half done under it; one
 * that attached clients must not see awaits `attachments.clearQuiesced`
 * instead, which also makes sure no client attached while it waited.
 */

import type { OpMap, OpName } from '../../schema';
import { INVALID_ARGUMENT, type MutationOptions, type Pool, type SyncHooks } from '../engine';
import type { Attachments } from './attachments';
import type { AllowedDirs } from './paths';
import { checkImport, exportImage, importImage } from './transfer';
import { WireError } from './wire-error';

export interface HandlerContext {
  pool: Pool;
  dirs: AllowedDirs;
  mutation: MutationOptions;
  progress: (done: number, total: number) => void;
  /** Binary payload that came with the request (write). */
  data: Buffer | null;
  /** Sends a binary payload for the request (read), before its result. */
  sendData: (data: Buffer) => void;
  /** Identity hooks for a sync's `preserve` (null: identity profiles are not available). */
  identityHooks: (
    preserve: 'default' | 'none' | string[],
    references?: { referenceMap?: Record<string, string>; allowSourceReferences?: string[] },
  ) => SyncHooks<unknown, unknown> | null;
  stats: () => { connections: number; inFlight: number; uptimeSeconds: number };
  /** True once the agent is stopping: a long operation gives up (SHUTTING_DOWN) instead of delaying the stop. */
  stopping: () => boolean;
  /** NBD sessions: shown by describe/ls/sessions; guarded operations clear them first (IN_USE or force). */
  attachments: Attachments;
}

type Handler<K extends OpName> = (p: OpMap[K]['params'], ctx: HandlerContext) => Promise<unknown> | unknown;

const container = (ref: string) => ref.slice(0, ref.lastIndexOf('@'));

/** Containers an operation touches (serialized per container). */
export function lockKeys(op: OpName, params: Record<string, unknown>): string[] {
  const keys: string[] = [];
  for (const key of ['container', 'target', 'vm', 'member', 'name']) {
    if (typeof params[key] === 'string' && !(op === 'snapshot' && key === 'name'))
      keys.push(params[key] as string);
  }
  for (const key of ['source', 'snapshot']) {
    if (typeof params[key] === 'string' && (params[key] as string).includes('@'))
      keys.push(container(params[key] as string));
  }
  return keys;
}

export const handlers: { [K in OpName]: Handler<K> } = {
  info: (_p, { pool }) => pool.info(),
  stats: (_p, { pool, stats }) => ({ pool: pool.info(), ...stats() }),
  listContainers: (_p, { pool, attachments }) =>
    pool.listContainers().map((c) => withSessions(c, attachments)),
  describe: (p, { pool, attachments }) => withSessions(pool.describe(p.container), attachments),
  sessions: (p, { attachments }) => ({
    sessions: attachments.list(p.container),
    fences: attachments.fences(p.container),
  }),
  // Only the operator lifts a fence, having stopped the VM the forced operation cut off (nbd/fences.ts).
  unfence: (p, { attachments }) => ({ lifted: attachments.unfence(p.container) }),
  createContainer: (p, { pool, mutation }) => pool.createContainer(p, mutation),
  // A forced operation is rehearsed first (rolled back): one it would refuse disconnects no one (attachments.ts).
  // No verdict from a rehearsal (false) lets the operation go ahead as before.
  resize: async (p, { pool, mutation, attachments }) => {
    const resize = (m: MutationOptions) => pool.resize(p.container, p.size, { shrink: p.shrink, ...m });
    // The size it has already: nothing changes under an attached client, so none is disconnected.
    const current = pool.describe(p.container);
    if (current.type !== 'vm' && current.size === p.size) return resize(mutation);
    await attachments.clearQuiesced('resize', p, () => pool.rehearse(() => resize({})));
    return resize(mutation);
  },
  setLabels: (p, { pool, mutation }) => pool.setLabels(p.container, p.labels, mutation),
  deleteContainer: async (p, { pool, mutation, attachments }) => {
    const remove = (m: MutationOptions) =>
      pool.deleteContainer(p.container, { recursive: p.recursive, detach: p.detach, ...m });
    await attachments.clearQuiesced('deleteContainer', p, () => pool.rehearse(() => remove({})));
    remove(mutation);
    return {};
  },
  addMember: (p, { pool, mutation }) => pool.addMember(p.vm, p.role, p.member, mutation),
  removeMember: (p, { pool, mutation }) => pool.removeMember(p.vm, p.role, mutation),
  read: (p, { pool, sendData }) => {
    const data = p.snapshot
      ? pool.readSnapshot(`${p.container}@${p.snapshot}`, p.offset, p.length)
      : pool.read(p.container, p.offset, p.length);
    sendData(data);
    return { length: data.length };
  },
  write: async (p, { pool, data }) => {
    if (data === null || data.length !== p.length) {
      throw new WireError(
        'DATA_MISSING',
        `write of ${p.length} bytes needs one binary frame of that length`,
        {
          received: data?.length ?? null,
        },
      );
    }
    await pool.quiesce();
    pool.write(p.container, p.offset, data);
    return { length: data.length };
  },
  writeZeroes: async (p, { pool }) => {
    await pool.quiesce();
    pool.writeZeroes(p.container, p.offset, p.length);
    return {};
  },
  trim: async (p, { pool }) => {
    await pool.quiesce();
    pool.trim(p.container, p.offset, p.length);
    return {};
  },
  flush: async (_p, { pool }) => {
    await pool.flush();
    return {};
  },
  allocation: (p, { pool }) => pool.allocation(p.container, p.offset, p.length),
  // Every NBD write acknowledged before it is in the snapshot; none is half done (engine/io-tracker.ts).
  snapshot: async (p, { pool, mutation }) => {
    await pool.quiesce();
    return pool.snapshot(p.container, p.name, { labels: p.labels, ...mutation });
  },
  listSnapshots: (p, { pool }) => pool.listSnapshots(p.container, { includeHidden: p.includeHidden }),
  describeSnapshot: (p, { pool }) => pool.describeSnapshot(p.snapshot),
  deleteSnapshot: async (p, { pool, mutation, attachments }) => {
    await attachments.clearQuiesced('deleteSnapshot', p);
    pool.deleteSnapshot(p.snapshot, mutation);
    return {};
  },
  sync: async (p, { pool, mutation, identityHooks, attachments }) => {
    // Fresh hooks per run: they gather the run's identity report.
    const sync = (m: MutationOptions) => {
      const hooks = identityHooks(p.preserve ?? 'default', {
        referenceMap: p.referenceMap,
        allowSourceReferences: p.allowSourceReferences,
      });
      return pool.sync(p.target, p.source, {
        safetySnapshot: p.safetySnapshot,
        members: p.members,
        ...(hooks ? { hooks } : {}),
        ...m,
      });
    };
    await attachments.clearQuiesced('sync', p, () => pool.rehearse(() => sync({})));
    return sync(mutation);
  },
  clone: (p, { pool, mutation, identityHooks }) => {
    if (p.keepIdentity === true && (p.referenceMap !== undefined || p.allowSourceReferences !== undefined))
      throw INVALID_ARGUMENT(
        'keepIdentity copies the source exactly: referenceMap and allowSourceReferences would do nothing',
        {
          argument: 'keepIdentity',
        },
      );
    // A clone gets an identity of its own (clone-identity.ts) unless the caller wants the exact copy.
    const hooks =
      p.keepIdentity === true
        ? null
        : identityHooks('default', {
            referenceMap: p.referenceMap,
            allowSourceReferences: p.allowSourceReferences,
          });
    return pool.clone(p.source, p.name, { labels: p.labels, ...(hooks ? { hooks } : {}), ...mutation });
  },
  revert: async (p, { pool, mutation, attachments }) => {
    await attachments.clearQuiesced('revert', p, () =>
      pool.rehearse(() => pool.revert(p.container, p.snapshot)),
    );
    return pool.revert(p.container, p.snapshot, mutation);
  },
  flatten: async (p, { pool, progress, mutation, attachments }) => {
    await attachments.clearQuiesced('flatten', p);
    return pool.recordIdempotent(await pool.flatten(p.container, { onProgress: progress }), mutation);
  },
  lineage: (p, { pool }) => pool.lineage(p.container),
  usage: (p, { pool }) => pool.usage(p.container),
  fsck: (_p, { pool, progress }) => pool.fsck({ onProgress: progress }),
  // Only the allocator's limit changes: no table or block moves, so attached clients go on.
  growPool: (p, { pool, mutation }) => pool.grow({ capacityBytes: p.capacity }, mutation),
  // Paths are opened relative to the allowed directories' descriptors, following no link (host-files.ts).
  import: async (p, { pool, dirs, progress, mutation, attachments, stopping }) => {
    const check = () => (p.create === true ? undefined : checkImport(pool, dirs, p.path, p.container));
    await attachments.clearQuiesced('import', p, check);
    return importImage(pool, dirs, p.path, p.container, p.create === true, progress, mutation, stopping);
  },
  export: (p, { pool, dirs, progress, stopping }) =>
    exportImage(pool, dirs, p.path, p.container, p.snapshot, p.overwrite === true, progress, stopping),
};

/** A container as describe/ls show it: with its attached NBD sessions and its fences when there are any. */
function withSessions<T extends { name: string }>(c: T, attachments: Attachments): T {
  const sessions = attachments.list(c.name);
  const fences = attachments.fences(c.name);
  return {
    ...c,
    ...(sessions.length > 0 ? { sessions } : {}),
    ...(fences.length > 0 ? { fences } : {}),
  };
}
