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
}
