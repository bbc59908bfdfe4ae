/** The identity report a sync returns (the wire schema's IdentityReport). */
import type { IdentityField, IdentityReference } from '../../schema';
import type { IdentityWarning } from './fields';

/** A field of the target's identity after the sync (wire schema: one source for the type). */
export type { IdentityField, IdentityReference } from '../../schema';

export interface IdentityReport {
  fields: IdentityField[];
  warnings: IdentityWarning[];
  /** Distinct blocks the restore wrote, over all members. */
  blocksWritten: number;
  /** References in the synced configs: every one is the target's own (or mapped to it). */
  references: IdentityReference[];
}
