/**
 * The caller's referenceMap (`--map SRC=DST`) checked against what the sync
 * did with it. An operator's typo is the easiest way to give staging
 * production's identity, so an entry the sync applied is refused
 * (INVALID_ARGUMENT, details.conflicts; all or nothing) when its DST
 * - is one of the source's identity values (production's MAC, UUID,
 *   address, hostname) that the target does not have itself;
 * - is already one of the target's own MACs, UUIDs or addresses (two NICs
 *   with one MAC);
 * - is also the DST of another source MAC, UUID or address;
 * - is another of the source's references (production's other network, disk
 *   or VLAN) that the target does not use itself, unless the caller shares
 *   it on purpose (`--map prod-net=prod-net`).
 * An entry the sync did not apply (no reference or identity value only the
 * source has is SRC) is a warning: a typo in SRC would otherwise be invisible.
 */
import { type IdentityOperation, INVALID_ARGUMENT } from '../engine/errors';
import type { Content } from './content';
import type { Extracted, IdentityWarning } from './fields';
import { uniqueKind } from './fresh-identity';
import { identityDigits } from './reference-options';
import type { IdentityField, IdentityReference } from './report';

export interface MapConflict {
  source: string;
  target: string;
  reason: string;
}

/** A field no two devices of one VM may share: a MAC, a UUID or GUID, an address. */
function distinctField(field: string): boolean {
  return uniqueKind(field) !== null || /(?:^|\.)(?:addresses(?:\.\d+)?|address)$/i.test(field);
}

/**
 * Every identity value (lower case: MACs and UUIDs compare so) of the members, and those of distinct
 * fields. Not reference names: mapping a network or path to the source's own is the caller's choice.
 */
function valuesOf(members: Iterable<Extracted>): { all: Set<string>; distinct: Set<string> } {
  const all = new Set<string>();
  const distinct = new Set<string>();
  for (const m of members) {
    for (const [field, value] of m.fields) {
      all.add(valueKey(value.value));
      if (distinctField(field)) distinct.add(valueKey(value.value));
    }
  }
  return { all, distinct };
}

/** Every name the members' references hold (networks, paths, VLAN tags, port groups). */
function referenceNames(members: Content[]): Set<string> {
  const names = new Set<string>();
  for (const m of members)
    for (const span of m.references.values()) for (const n of span.reference!.names) names.add(n);
  return names;
}

/** How values compare: a MAC or UUID by its hex digits (`52-54-00-…`, `5254…` and `52:54:00:…` are one MAC), others lower case. */
const valueKey = (value: string): string => identityDigits(value) ?? value.toLowerCase();

/** The kind of identifier a report path's field holds (its role prefix, if any, dropped). */
function kindOfPath(path: string): ReturnType<typeof uniqueKind> {
  return uniqueKind(path) ?? uniqueKind(path.slice(path.indexOf('.') + 1));
}

/**
 * Refuses the applied entries whose DST is production's or a duplicate (throws
 * before anything is written); warns about the entries nothing used.
 */
export function checkReferenceMapUse(
  target: string,
  operation: IdentityOperation,
  map: Record<string, string>,
  sides: { before: Content[]; after: Content[] },
  used: { fields: IdentityField[]; references: IdentityReference[] },
  warn: (path: string, code: IdentityWarning['code'], message: string) => void,
): void {
  const own = valuesOf(sides.before);
  const source = valuesOf(sides.after);
  const ownNames = referenceNames(sides.before);
  const sourceNames = referenceNames(sides.after);
  const conflicts: MapConflict[] = [];
  const distinctTargets = new Map<string, string>();
  for (const [from, to] of Object.entries(map)) {
    // A multi-name reference (two VLAN tags, network and portgroup) lists each entry it used, '; '-separated.
    const digits = identityDigits(from);
    const applied =
      used.fields.some(
        (f) =>
          f.status === 'mapped' &&
          (f.sourceValue === from || (digits !== null && identityDigits(f.sourceValue ?? '') === digits)),
      ) ||
      used.references.some((r) =>
        (r.via ?? '').split('; ').some((part) => part.startsWith(`referenceMap: ${from} → `)),
      );
    if (!applied) {
      // `--map prod-net=prod-net` beside `--map prod-dmz=prod-net`: the share the DST check asks for.
      if (from === to && Object.entries(map).some(([f, t]) => f !== from && t === to)) continue;
      warn(
        `referenceMap.${from}`,
        'IDENTITY_FIELD_MISSING',
        `--map ${from}=${to} matched nothing: no reference or identity value only the source has is ${from}`,
      );
      continue;
    }
    const value = valueKey(to);
    if (source.all.has(value) && !own.all.has(value))
      conflicts.push({ source: from, target: to, reason: "is the source's own value" });
    else if (to !== from && sourceNames.has(to) && !ownNames.has(to) && map[to] !== to)
      conflicts.push({
        source: from,
        target: to,
        reason: `is another of the source's references, which the target does not use (to share it on purpose, also --map ${to}=${to})`,
      });
    else if (own.distinct.has(value))
      conflicts.push({
        source: from,
        target: to,
        reason: "is already the target's (a MAC, UUID or address of its own)",
      });
    else if (source.distinct.has(valueKey(from))) {
      const other = distinctTargets.get(value);
      if (other !== undefined && other.toLowerCase() !== from.toLowerCase())
        conflicts.push({ source: from, target: to, reason: `is also what ${other} is mapped to` });
      distinctTargets.set(value, from);
    }
  }
  // A MAC or UUID mapped to something that is not one (a typo, `hello`): the config would not load.
  for (const f of used.fields) {
    const kind = kindOfPath(f.path);
    if (f.status !== 'mapped' || kind === null || kind === 'serial' || f.sourceValue === undefined) continue;
    if (identityDigits(f.value)?.length !== identityDigits(f.sourceValue)?.length)
      conflicts.push({
        source: f.sourceValue,
        target: f.value,
        reason: `is not a ${kind === 'mac' ? 'MAC' : 'UUID'} like the value it replaces (${f.path})`,
      });
  }
  if (conflicts.length > 0) {
    throw INVALID_ARGUMENT(
      `${operation} of "${target}" refused: ${conflicts
        .map((c) => `--map ${c.source}=${c.target}: ${c.target} ${c.reason}`)
        .join(
          '; ',
        )}. Staging must not carry production's identity nor one value twice: map each to a value of staging's own`,
      { argument: 'referenceMap', target, conflicts },
    );
  }
}
