/** The identity report a sync returns (the wire schema's IdentityReport). */
import type { IdentityWarning } from './fields';

export interface IdentityField {
  path: string;
  /** The target's value, kept. */
  value: string;
  /** restored: the sync had overwritten it and it was written back; unchanged: equal anyway, or metadata. */
  status: 'restored' | 'unchanged';
  /** What the synced content held, when it differed. */
  sourceValue?: string;
}

export interface IdentityReport {
  fields: IdentityField[];
  warnings: IdentityWarning[];
  /** Distinct blocks the restore wrote, over all members. */
  blocksWritten: number;
  /** References in the synced configs: every one is the target's own (or mapped to it). */
  references: IdentityReference[];
}

/**
 * A reference (a path in a config that names a disk, file, network, socket or
 * port) after the sync. kept: the target had it, its own text is what the file
 * holds; mapped: the target never had it, the source's was mapped to the
 * target's own (`via` says how); removed: the target's device has no such
 * reference, so the source's was taken out.
 */
export interface IdentityReference {
  path: string;
  /** What the target's config now says ('' when removed). */
  value: string;
  status: 'kept' | 'mapped' | 'removed';
  /** What the source's config said there. */
  sourceValue: string;
  /** mapped: how each name was mapped (`member disk2: prod-disk2 → staging-disk2`, `referenceMap`, `used by the target`). */
  via?: string;
}
