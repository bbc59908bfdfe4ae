/**
 * The size rule of a vdisk or file that a sync targets: its size follows the
 * sync's source (a sync replaces the whole table, size included). A size the
 * container's data source gave it is no drift from the declared size, and the
 * declared size is applied again only when the declared value changes; a size
 * changed by hand (not the source's) is drift.
 */
import type { AgentApi, AgentContainer } from './agent-api';
import { step } from './errors';

/**
 * Whether the container has the size of the snapshot its data comes from: the nearest snapshot of
 * another container in its lineage (a sync's or a clone's source; its own snapshots are skipped).
 */
async function hasSourceSize(agent: AgentApi, c: AgentContainer): Promise<boolean> {
  if (c.parentSnapshot === null) return false; // never synced, cloned or reverted: its size is its own
  const lineage = await step('lineage', c.name, () => agent.lineage(c.name));
  const source = lineage.find((entry) => entry.snapshot && entry.snapshot.container !== c.name)?.snapshot;
  return source?.size === c.size;
}

/** The size as the declaration sees it: the declared one while the live size is the source's. */
export async function sizeAsDeclared(
  agent: AgentApi,
  c: AgentContainer,
  declared: number | undefined,
): Promise<number> {
  if (declared === undefined || declared === c.size) return c.size;
  return (await hasSourceSize(agent, c)) ? declared : c.size;
}

/**
 * Whether an update resizes to the declared size: the declared value changed, or the live size is
 * not the one the source gave (changed by hand). A re-applied unchanged declaration keeps the source's.
 */
export async function resizeWanted(
  agent: AgentApi,
  c: AgentContainer,
  oldDeclared: number | undefined,
  declared: number | undefined,
): Promise<boolean> {
  if (c.type === 'vm' || declared === undefined || declared === c.size) return false;
  return oldDeclared !== declared || !(await hasSourceSize(agent, c));
}
