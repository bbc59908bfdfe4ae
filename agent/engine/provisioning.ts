/**
 * Thin provisioning: containers may declare more than the pool holds (only
 * written blocks take space), but then writes fail with OUT_OF_SPACE once the
 * pool fills, under a running VM. Here the declared total, and the warning a
 * create or a grow gets when it takes that total beyond the pool's capacity.
 */
import type { Catalog } from './catalog';
import type { Warning } from './types';

/** Bytes every container declares (a VM: none of its own; its members count). */
export function provisionedBytes(catalog: Catalog): number {
  let total = 0;
  for (const c of catalog.containers.values()) if (!c.incomplete) total += c.size;
  return total;
}

/** Declared bytes per byte of capacity, to two decimals (0 for a pool of no capacity). */
export function overcommitRatio(provisioned: number, capacity: number): number {
  return capacity > 0 ? Math.round((provisioned / capacity) * 100) / 100 : 0;
}

const gib = (n: number) => `${(n / 2 ** 30).toFixed(1)} GiB`;

/** OVERCOMMITTED when an operation raised the declared total to beyond `capacity`, else null. */
export function overcommitWarning(before: number, after: number, capacity: number): Warning | null {
  if (after <= before || after <= capacity) return null;
  return {
    code: 'OVERCOMMITTED',
    message: `the pool's containers now declare ${gib(after)} on ${gib(capacity)} of capacity (${overcommitRatio(after, capacity)}×): allowed (thin provisioning), but writes fail with OUT_OF_SPACE once ${gib(capacity)} is used; grow the pool or watch \`snapsync-agent info\``,
    details: { provisionedBytes: after, capacityBytes: capacity },
  };
}
