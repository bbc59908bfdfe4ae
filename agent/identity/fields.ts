/** What a profile reads from one container: identity values, and what could not be read and why. */

/** Stable warning codes (callers switch on them; messages are for people). */
export type WarningCode =
  /** The label or config could not be parsed: nothing in it was read or written. */
  | 'IDENTITY_UNPARSABLE'
  /** The target had the field, but the synced content has no place for it (or a name asked for matches nothing). */
  | 'IDENTITY_FIELD_MISSING'
  /** The target had no value for an identity field; after the sync it holds the source's. */
  | 'IDENTITY_FROM_SOURCE'
  /** A declared config format (label) that no profile knows. */
  | 'IDENTITY_UNKNOWN_FORMAT'
  /** A config member too large to be a config file: not parsed. */
  | 'IDENTITY_TOO_LARGE'
  /** A name or UUID of the source's containers left in a synced config, allowed by the caller. */
  | 'IDENTITY_SOURCE_REFERENCE'
  /**
   * Something of the source's taken out of a synced config because the target has none of its own: a
   * host device (libvirt <hostdev>), cloud-init's guestinfo data.
   */
  | 'IDENTITY_SOURCE_REMOVED';

export interface IdentityWarning {
  path: string;
  code: WarningCode;
  message: string;
}

/**
 * A value as read, and as written: `raw` is its exact text in the file and
 * `style` the quoting context it was written in, so a restore into the same
 * context writes back the target's own bytes, not a re-encoding.
 */
export interface FieldValue {
  value: string;
  raw: string;
  style: string;
  /** A list's items, each as read (network-config): the list is written anew from them in another style. */
  items?: FieldValue[];
}

/** Something that could not be read: a field path (without role prefix), or null for the whole content. */
export interface Problem {
  field: string | null;
  code: WarningCode;
  message: string;
  /** A synced config with this problem is refused like one that cannot be read at all (a network block). */
  refusesSync?: true;
}

export interface Extracted {
  /** field path (without the member's role prefix) → value, in the order found */
  fields: Map<string, FieldValue>;
  /** Lists of values (path → the list; its items are fields `<path>.0`, `<path>.1`…), written whole when their lengths differ. */
  lists: Map<string, FieldValue>;
  problems: Problem[];
  /** Fields that are off unless asked for by name or glob (partition GUIDs). */
  optIn: Set<string>;
}

export const emptyExtracted = (): Extracted => ({
  fields: new Map(),
  lists: new Map(),
  problems: [],
  optIn: new Set(),
});
