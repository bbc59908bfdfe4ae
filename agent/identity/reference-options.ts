/**
 * The caller's reference options checked at the door (referenceMap,
 * allowSourceReferences: bad input is INVALID_ARGUMENT before anything is
 * read), and what a reference the target never had may be mapped to.
 */
import type { SyncContext } from '../engine';
import { INVALID_ARGUMENT } from '../engine/errors';
import type { Captured } from './content';
import type { ReferenceMapping } from './references';
import { identityForms } from './source-scan';

const MAX_MAP_ENTRIES = 256;

export function checkReferenceMap(map: Record<string, string> | undefined): Record<string, string> {
  if (map === undefined) return {};
  if (
    typeof map !== 'object' ||
    map === null ||
    Array.isArray(map) ||
    Object.keys(map).length > MAX_MAP_ENTRIES
  )
    throw INVALID_ARGUMENT(
      `referenceMap must be an object of up to ${MAX_MAP_ENTRIES} source value → target value`,
      {
        argument: 'referenceMap',
      },
    );
  const out: Record<string, string> = Object.create(null);
  for (const [from, to] of Object.entries(map)) {
    if (from === '' || typeof to !== 'string' || to === '' || from.length > 1024 || to.length > 1024)
      throw INVALID_ARGUMENT(
        `referenceMap["${from.slice(0, 64)}"] must map a value to a value of 1 to 1024 characters`,
        {
          argument: `referenceMap.${from.slice(0, 64)}`,
        },
      );
    out[from] = to;
  }
  return out;
}

export function checkAllowed(names: string[] | undefined): Set<string> {
  if (names === undefined) return new Set();
  if (!Array.isArray(names) || names.some((n) => typeof n !== 'string' || n === '' || n.length > 256))
    throw INVALID_ARGUMENT('allowSourceReferences must be a list of container names or UUIDs', {
      argument: 'allowSourceReferences',
    });
  return new Set(names.map((n) => n.toLowerCase()));
}

/** What a reference the target never had may be mapped to: the caller's map, the target's own names, its members by role. */
export function referenceMapping(
  context: SyncContext,
  captured: Captured,
  referenceMap: Record<string, string>,
): ReferenceMapping {
  const targetNames = new Set<string>();
  for (const content of captured.values())
    for (const span of content.references.values()) for (const n of span.reference!.names) targetNames.add(n);
  const synced = new Set(context.members.map((m) => m.role));
  const members = context.sourceContainers
    .filter((c) => c.role !== null)
    .map((c) => ({
      role: c.role!,
      source: c.name,
      target: context.target.members[c.role!] ?? null,
      synced: synced.has(c.role),
    }));
  return { referenceMap, targetNames, members };
}

/**
 * The map entry for identity value `value`, if any: by its exact text, or for a MAC, UUID or GUID by its
 * hex digits (`52:54:00:0A:00:02`, `52-54-00-0a-00-02` and `5254000a0002` name one MAC, as the safety
 * net reads them). Returns the entry's own key, so the use check credits the entry the caller wrote.
 */
export function mapEntryFor(
  referenceMap: Record<string, string>,
  value: string,
): { from: string; to: string } | undefined {
  const exact = referenceMap[value];
  if (exact !== undefined) return { from: value, to: exact };
  const digits = identityDigits(value);
  if (digits === null) return undefined;
  for (const [from, to] of Object.entries(referenceMap))
    if (identityDigits(from) === digits) return { from, to };
  return undefined;
}

/** The hex digits of a MAC, UUID or GUID (null for any other value). */
export function identityDigits(value: string): string | null {
  return identityForms(value) === null ? null : value.replace(/[^0-9a-f]/gi, '').toLowerCase();
}
