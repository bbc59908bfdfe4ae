/** What a profile reads from a container: identity values, and where they could not be read. */

export interface Warning {
  path: string;
  code: 'IDENTITY_UNPARSABLE' | 'IDENTITY_FIELD_MISSING';
  message: string;
}

export interface Extracted {
  /** path (without the member's role prefix) → value */
  fields: Map<string, string>;
  warnings: Warning[];
  /** Fields that exist but are off unless asked for by name (e.g. partition GUIDs). */
  optIn: Set<string>;
}

export const emptyExtracted = (): Extracted => ({ fields: new Map(), warnings: [], optIn: new Set() });
