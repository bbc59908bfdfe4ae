/**
 * References after a sync: every path in a synced config that names storage,
 * a network, a socket or a port must be the target's own.
 * - the target had the path: its own text is written back (kept);
 * - the target had the path, but wired that device to another member than the
 *   source's device names (production swapped vda and vdb): the device takes
 *   the target's own text of the device that named the member paired with the
 *   source's, or is mapped as below when none did (mapped; rewiring.ts);
 * - the target's device exists but lacks it: the source's is taken out (removed);
 * - the target never had it (production gained a disk): each name in it is
 *   mapped, first by the caller's referenceMap (source value → target value),
 *   then kept when the target itself uses that very name (a shared network, an
 *   ISO library), then through the VM's role pairing: a name that contains a
 *   source member's container name (its NBD export name, `prod-disk2.vmdk`)
 *   gets the target's member of the same role instead, in the directory the
 *   target's own member files are in (a bare file name stays bare); a name
 *   none of these maps leaves the reference unmapped, and the caller refuses the sync.
 */
import type { FieldValue } from './fields';
import type { IdentityReference } from './report';
import { inTargetPlace, type Rewire, type RoleMember, rewiring } from './rewiring';
import type { ReferenceInfo, ValueSpan } from './spans';
import { replaceTokens, tokenOccurrences } from './tokens';

export interface ReferenceMapping {
  /** Source value → target value, from the caller. */
  referenceMap: Record<string, string>;
  /** Every name the target's own references held before the sync (all members). */
  targetNames: Set<string>;
  /** Per role of the source VM: its member's container name, the target's member of that role, whether synced. */
  members: RoleMember[];
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
  /** Source values taken out because the target had none (a host device, a unit with removeUnlessTargetHas). */
  removedFromSource: Array<{ path: string; value: string }>;
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
    const value = inTargetPlace(
      replaceTokens(name, member.source, member.target),
      member.target,
      m.targetNames,
      m.members,
    );
    if (value === null) return { unmapped: name };
    const place = value.includes('/')
      ? `, in the target's own directory ${value.slice(0, value.lastIndexOf('/') + 1)}`
      : '';
    return { value, via: `member ${member.role}: ${member.source} → ${member.target}${place}` };
  }
  return { unmapped: name };
}

/** Last span per field (a .vmx key written twice counts as VMware reads it: the last one). */
export function referenceSpans(spans: ValueSpan[]): Map<string, ValueSpan> {
  const byField = new Map<string, ValueSpan>();
  for (const s of spans) if (s.reference) byField.set(s.field, s);
  return byField;
}

interface Side {
  references: Map<string, ValueSpan>;
  devices: Set<string>;
}

export function restoreReferences(
  prefix: string,
  before: Side | null,
  after: Side,
  mapping: ReferenceMapping,
): ReferenceOutcome {
  const out: ReferenceOutcome = {
    wanted: new Map(),
    references: [],
    unmapped: [],
    missing: [],
    removedFromSource: [],
  };
  const rewired = before
    ? rewiring(before.references, after.references, mapping.members)
    : new Map<string, Rewire>();
  const units = new Map<string, Array<[string, ValueSpan]>>();
  for (const [field, span] of after.references) {
    const { device, unit } = span.reference!;
    if (unit) {
      const key = `${device ?? ''}\n${unit}`;
      units.set(key, [...(units.get(key) ?? []), [field, span]]);
      continue;
    }
    const rewire = device === undefined ? undefined : rewired.get(device);
    if (rewire) restoreRewired(prefix, field, span, before!, rewire, mapping, out);
    else restoreOne(prefix, field, span, before, mapping, out);
  }
  const added = new Set<string>();
  for (const spans of units.values()) restoreUnit(prefix, spans, before, rewired, mapping, out, added);
  if (before) restoreAbsentUnits(prefix, before, after, new Set(units.keys()), out, added);
  // A reference of a device the synced config does not have at all went with the device: not worth a warning.
  for (const [field, own] of before?.references ?? []) {
    const device = own.reference!.device;
    if (
      own.value.raw !== '' &&
      !after.references.has(field) &&
      !added.has(field) &&
      (!device || after.devices.has(device))
    )
      out.missing.push({ path: prefix + field, value: own.value.value });
  }
  return out;
}

/**
 * A per-VM unit (removeUnlessTargetHas: cloud-init's guestinfo) the target has and the synced config
 * lacks entirely: the target's lines are added after the synced config's last reference line.
 */
function restoreAbsentUnits(
  prefix: string,
  before: Side,
  after: Side,
  present: Set<string>,
  out: ReferenceOutcome,
  added: Set<string>,
): void {
  const absent = [...before.references]
    .filter(([, s]) => {
      const { device, unit, removeUnlessTargetHas } = s.reference!;
      return removeUnlessTargetHas && !present.has(`${device ?? ''}\n${unit}`);
    })
    .sort((a, b) => a[1].start - b[1].start);
  if (absent.length === 0) return;
  const style = absent[0]![1].value.style;
  const anchor = [...after.references]
    .filter(([, s]) => s.value.style === style)
    .sort((a, b) => b[1].start - a[1].start)[0];
  if (!anchor) return; // nowhere to put them: reported missing
  const [anchorField, anchorSpan] = anchor;
  const base = out.wanted.get(anchorField) ?? anchorSpan.value;
  out.wanted.set(anchorField, {
    value: base.value,
    raw: asLines([base.raw, ...absent.map(([, s]) => s.value.raw)]),
    style,
  });
  for (const [field, s] of absent) {
    added.add(field);
    out.references.push({ path: prefix + field, value: s.value.value, status: 'kept', sourceValue: '' });
  }
}

/** The field without its device (`.dvs.portId` of `ethernet1.dvs.portId`). */
const keyOf = (field: string, device: string | undefined) =>
  device === undefined ? field : field.slice(device.length);

/** Each text on lines of its own (units are .vmx lines; the last line of a file may have no line ending). */
const asLines = (raws: string[]) => raws.map((r) => (r === '' || r.endsWith('\n') ? r : `${r}\n`)).join('');

/**
 * References that only mean something together (a NIC's backing, a drive's deviceType and fileName):
 * when the target's device has any of them, the target's whole set is written back (the source's keys
 * it lacks taken out, its keys the source lacks added after the source's last one); otherwise each is a
 * reference the target never had (or, with removeUnlessTargetHas, taken out).
 */
function restoreUnit(
  prefix: string,
  spans: Array<[string, ValueSpan]>,
  before: Side | null,
  rewired: Map<string, Rewire>,
  mapping: ReferenceMapping,
  out: ReferenceOutcome,
  added: Set<string>,
): void {
  const { device, unit, removeUnlessTargetHas } = spans[0]![1].reference!;
  const rewire = device === undefined ? undefined : rewired.get(device);
  const ownDevice = rewire ? rewire.from : device;
  const own = [...(before?.references ?? [])].filter(
    ([, s]) => ownDevice !== null && s.reference!.device === ownDevice && s.reference!.unit === unit,
  );
  if (own.length === 0) {
    for (const [field, span] of spans) {
      if (span.reference!.identityLine) continue;
      if (removeUnlessTargetHas) {
        takeOut(prefix + field, field, span, out);
        out.removedFromSource.push({ path: prefix + field, value: span.value.value });
      } else if (rewire) restoreRewired(prefix, field, span, before!, rewire, mapping, out);
      else restoreOne(prefix, field, span, before, mapping, out);
    }
    return;
  }
  const ownByKey = new Map(own.map(([f, s]) => [keyOf(f, ownDevice!), s]));
  const via = rewire
    ? `member ${rewire.role}: ${rewire.source} → ${rewire.target} (the target wired ${device} to ${rewire.targetHad}); the target's own ${prefix}${ownDevice}`
    : undefined;
  const status = via ? ('mapped' as const) : ('kept' as const);
  const ordered = [...spans].sort((a, b) => a[1].start - b[1].start);
  for (const [field, span] of ordered) {
    const mine = ownByKey.get(keyOf(field, device));
    if (!mine) {
      takeOut(prefix + field, field, span, out);
      continue;
    }
    // The same key on both sides: its value is the identity field's to restore (or not: preserve).
    if (span.reference!.identityLine) continue;
    if (mine.value.raw !== span.value.raw) out.wanted.set(field, mine.value);
    out.references.push({
      path: prefix + field,
      value: mine.value.value,
      status,
      sourceValue: span.value.value,
      ...(via ? { via } : {}),
    });
  }
  const sourceKeys = new Set(spans.map(([f]) => keyOf(f, device)));
  const extras = own
    .filter(([f]) => !sourceKeys.has(keyOf(f, ownDevice!)))
    .sort((a, b) => a[1].start - b[1].start);
  if (extras.length === 0) return;
  const [anchorField, anchor] = ordered[ordered.length - 1]!;
  const base = out.wanted.get(anchorField) ?? anchor.value;
  out.wanted.set(anchorField, {
    value: base.value,
    raw: asLines([base.raw, ...extras.map(([, s]) => s.value.raw)]),
    style: anchor.value.style,
  });
  for (const [f, s] of extras) {
    const field = (device ?? '') + keyOf(f, ownDevice!);
    added.add(field);
    // The identity field's report says it came back (hooks.ts).
    if (s.reference!.identityLine) continue;
    out.references.push({
      path: prefix + field,
      value: s.value.value,
      status,
      sourceValue: '',
      ...(via ? { via } : {}),
    });
  }
}

/** A reference the target had at the same path: its own, else taken out where its device is, else mapped. */
function restoreOne(
  prefix: string,
  field: string,
  span: ValueSpan,
  before: Side | null,
  mapping: ReferenceMapping,
  out: ReferenceOutcome,
): void {
  const path = prefix + field;
  const reference = span.reference!;
  const own = before?.references.get(field);
  // An empty slot (libvirt-references.ts) on both sides, or on the source's side of a device the
  // target lacks, holds nothing of anyone's: not reported.
  if (span.value.raw === '' && (own === undefined || own.value.raw === '')) return;
  if (own?.value.raw === '') {
    takeOut(path, field, span, out);
    return;
  }
  if (own) {
    if (own.value.raw !== span.value.raw) out.wanted.set(field, own.value);
    out.references.push({ path, value: own.value.value, status: 'kept', sourceValue: span.value.value });
    return;
  }
  // Without a port, or autoport, of its own, libvirt picks a free one (no port and no autoport is autoport).
  if (reference.hostPort) {
    takeOut(path, field, span, out);
    return;
  }
  if (
    reference.removable &&
    (before ? reference.device && before.devices.has(reference.device) : cloneTakesOut(reference, mapping))
  )
    takeOut(path, field, span, out);
  else mapReference(path, field, span, mapping, out);
}

/**
 * A clone (no target side) is handled as a sync into a target that has none of the source's host devices
 * and tap names: those are taken out, unless the caller mapped every name of the host device.
 */
function cloneTakesOut(reference: ReferenceInfo, mapping: ReferenceMapping): boolean {
  if (reference.madeAtStart) return true;
  return reference.wholeDevice === true && !reference.names.every((n) => n in mapping.referenceMap);
}

function takeOut(path: string, field: string, span: ValueSpan, out: ReferenceOutcome): void {
  out.wanted.set(field, { value: '', raw: '', style: span.value.style });
  out.references.push({ path, value: '', status: 'removed', sourceValue: span.value.value });
  if (span.reference!.wholeDevice) out.removedFromSource.push({ path, value: span.value.value });
}

/** A reference of a device the target wired to another member: the target's device of the right member speaks for it. */
function restoreRewired(
  prefix: string,
  field: string,
  span: ValueSpan,
  before: Side,
  rewire: Rewire,
  mapping: ReferenceMapping,
  out: ReferenceOutcome,
): void {
  const path = prefix + field;
  const device = span.reference!.device!;
  const why = `member ${rewire.role}: ${rewire.source} → ${rewire.target} (the target wired ${device} to ${rewire.targetHad})`;
  if (rewire.from === null) {
    mapReference(path, field, span, mapping, out, `${why}; the target names it nowhere`);
    return;
  }
  const ownField = rewire.from + field.slice(device.length);
  const own = before.references.get(ownField);
  if (own) {
    if (own.value.raw !== span.value.raw) out.wanted.set(field, own.value);
    out.references.push({
      path,
      value: own.value.value,
      status: 'mapped',
      sourceValue: span.value.value,
      via: `${why}; the target's own ${prefix}${ownField}`,
    });
    return;
  }
  // The target's device of that member lacks this reference (no backing chain): the source's is taken out.
  if (span.reference!.removable) takeOut(path, field, span, out);
  else mapReference(path, field, span, mapping, out, why);
}

/** Each name of the source's reference mapped to the target's (or the reference is unmapped). */
function mapReference(
  path: string,
  field: string,
  span: ValueSpan,
  mapping: ReferenceMapping,
  out: ReferenceOutcome,
  why?: string,
): void {
  const reference = span.reference!;
  const mapped = new Map<string, string>();
  const via: string[] = why ? [why] : [];
  const unmapped: string[] = [];
  const servers = new Set(reference.serverNames ?? []);
  for (const name of reference.names) {
    if (servers.has(name)) continue;
    const result = mapName(name, mapping);
    if ('unmapped' in result || !(reference.accepts?.(name, result.value) ?? true)) unmapped.push(name);
    else {
      mapped.set(name, result.value);
      via.push(result.via);
    }
  }
  // The server exporting a disk that is mapped to the target's member exports that member too.
  const toMember = [...mapped].some(
    ([from]) =>
      !servers.has(from) &&
      mapping.members.some((m) => m.target !== null && tokenOccurrences(from, m.source).length > 0),
  );
  for (const name of servers) {
    const result = mapName(name, mapping);
    if ('value' in result) {
      mapped.set(name, result.value);
      via.push(result.via);
    } else if (toMember) {
      mapped.set(name, name);
      via.push(`the server exporting the target's member: ${name}`);
    } else unmapped.push(name);
  }
  if (unmapped.length > 0) {
    out.unmapped.push({ path, sourceValue: span.value.value, unmapped });
    return;
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
