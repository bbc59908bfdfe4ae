/**
 * What the identity hooks read from one member: its identity fields, its
 * config's bytes and spans, its references; and how they report (fields and
 * warnings, one warning per path and code).
 */
import { type Extracted, emptyExtracted, type IdentityWarning, type WarningCode } from './fields';
import type { NamedItem } from './pair-by-name';
import type { IdentityField } from './report';
import type { ValueSpan } from './spans';

/** Config files larger than this are not parsed (a VM config is a few KiB). */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/** What one member holds; for a config file also its bytes and spans, so restore edits what it parsed. */
export interface Content extends Extracted {
  config?: { bytes: Buffer; text: string; spans: ValueSpan[] };
  /** References (storage, networks…) by path, and the devices they belong to. */
  references: Map<string, ValueSpan>;
  devices: Set<string>;
  /** Numbered items that pair by name (pair-by-name.ts). */
  named?: NamedItem[];
  /** A file member's or small vdisk's bytes (at most MAX_CONFIG_BYTES), config or not: what the safety net compares with. */
  bytes?: Buffer;
}

export const emptyContent = (): Content => ({
  ...emptyExtracted(),
  references: new Map(),
  devices: new Set(),
});

/** Per member (keyed by role, '' for a plain sync): the target's identity before the sync. */
export type Captured = Map<string, Content>;

export class Reporter {
  readonly fields: IdentityField[] = [];
  readonly warnings: IdentityWarning[] = [];
  warn(path: string, code: WarningCode, message: string): void {
    if (!this.warnings.some((w) => w.path === path && w.code === code))
      this.warnings.push({ path, code, message });
  }
}

/** Every identity value the target held before the sync, over all members. */
export function* ownValues(captured: Captured): Generator<string> {
  for (const content of captured.values()) for (const value of content.fields.values()) yield value.value;
}
