/**
 * References after a sync: every path in a synced config that names storage,
 * a network, a socket or a port must be the target's own.
 * - the target had the path: its own text is written back (kept);
 * - the target's device exists but lacks it: the source's is taken out (removed);
 * - the target never had it (production gained a disk): each name in it is
 *   mapped, first by the caller's referenceMap (source value → target value),
 *   then kept when the target itself uses that very name (a shared network, an
 *   ISO library), then through the VM's role pairing: a name that contains a
 *   source member's container name (its NBD export name, `prod-disk2.vmdk`)
 *   gets the target's member of the same role instead; a name none of these
 *   maps leaves the reference unmapped, and the caller refuses the sync.
 */
import type { FieldValue } from './fields';
import type { IdentityReference } from './report';
import type { ValueSpan } from './spans';

export interface ReferenceMapping {
  /** Source value → target value, from the caller. */
  referenceMap: Record<string, string>;
  /** Every name the target's own references held before the sync (all members). */
  targetNames: Set<string>;
  /** Per role of the source VM: its member's container name, and the target's member of that role (null: none). */
  members: Array<{ role: string; source: string; target: string | null }>;
}

export interface Unmapped {
  path: string;
  sourceValue: string;
  unmapped: string[];
}

export interface ReferenceOutcome {
  wanted: Map<string, FieldValue>;
  references: IdentityReference[];
  unmapped: Unmapped[];
  /** Paths the target had that the synced config has no place for. */
  missing: Array<{ path: string; value: string }>;
}

const ALNUM = /[A-Za-z0-9]/;

/** Offsets where `name` occurs in `text` as a whole token (no letter or digit either side). */
export function tokenOccurrences(text: string, name: string, ignoreCase = false): number[] {
  const hay = ignoreCase ? text.toLowerCase() : text;
  const needle = ignoreCase ? name.toLowerCase() : name;
  const found: number[] = [];
  if (needle === '') return found;
  for (let at = hay.indexOf(needle); at >= 0; at = hay.indexOf(needle, at + 1)) {
    const before = at > 0 ? hay[at - 1]! : '';
    const after = hay[at + needle.length] ?? '';
    if (!ALNUM.test(before) && !ALNUM.test(after)) found.push(at);
  }
  return found;
}

/** The target's name for one source name, and how; null when nothing maps it. */
function mapName(name: string, m: ReferenceMapping): { value: string; via: string } | { unmapped: string } {
  const given = m.referenceMap[name];
  if (given !== undefined) return { value: given, via: `referenceMap: ${name} → ${given}` };
  if (m.targetNames.has(name)) return { value: name, via: `used by the target too: ${name}` };
  const member = m.members
    .filter((p) => tokenOccurrences(name, p.source).length > 0)
    .sort((a, b) => b.source.length - a.source.length)[0];
  if (member?.target) {
    const value = replaceTokens(name, member.source, member.target);
    return { value, via: `member ${member.role}: ${member.source} → ${member.target}` };
  }
  return { unmapped: name };
}

function replaceTokens(text: string, from: string, to: string): string {
  let out = '';
  let at = 0;
  for (const i of tokenOccurrences(text, from)) {
    out += text.slice(at, i) + to;
    at = i + from.length;
  }
  return out + text.slice(at);
}

/** Last span per field (a .vmx key written twice counts as VMware reads it: the last one). */
export function referenceSpans(spans: ValueSpan[]): Map<string, ValueSpan> {
  const byField = new Map<string, ValueSpan>();
  for (const s of spans) if (s.reference) byField.set(s.field, s);
  return byField;
}

export function restoreReferences(
  prefix: string,
  before: { references: Map<string, ValueSpan>; devices: Set<string> } | null,
  after: { references: Map<string, ValueSpan>; devices: Set<string> },
  mapping: ReferenceMapping,
): ReferenceOutcome {
  const out: ReferenceOutcome = { wanted: new Map(), references: [], unmapped: [], missing: [] };
  for (const [field, span] of after.references) {
    const path = prefix + field;
    const reference = span.reference!;
    const own = before?.references.get(field);
    if (own) {
      if (own.value.raw !== span.value.raw) out.wanted.set(field, own.value);
      out.references.push({ path, value: own.value.value, status: 'kept', sourceValue: span.value.value });
      continue;
    }
    if (reference.removable && reference.device && before?.devices.has(reference.device)) {
      out.wanted.set(field, { value: '', raw: '', style: span.value.style });
      out.references.push({ path, value: '', status: 'removed', sourceValue: span.value.value });
      continue;
    }
    const mapped = new Map<string, string>();
    const via: string[] = [];
    const unmapped: string[] = [];
    for (const name of reference.names) {
      const result = mapName(name, mapping);
      if ('unmapped' in result) unmapped.push(result.unmapped);
      else {
        mapped.set(name, result.value);
        via.push(result.via);
      }
    }
    if (unmapped.length > 0) {
      out.unmapped.push({ path, sourceValue: span.value.value, unmapped });
      continue;
    }
    let display = span.value.value;
    for (const [from, to] of mapped) display = display.split(from).join(to);
    if ([...mapped].some(([from, to]) => from !== to)) {
      out.wanted.set(field, {
        value: display,
        raw: reference.rewrite((n) => mapped.get(n) ?? n),
        style: span.value.style,
      });
    }
    out.references.push({
      path,
      value: display,
      status: 'mapped',
      sourceValue: span.value.value,
      via: via.length > 0 ? via.join('; ') : 'names nothing',
    });
  }
  // A reference of a device the synced config does not have at all went with the device: not worth a warning.
  for (const [field, own] of before?.references ?? []) {
    const device = own.reference!.device;
    if (!after.references.has(field) && (!device || after.devices.has(device)))
      out.missing.push({ path: prefix + field, value: own.value.value });
  }
  return out;
}
