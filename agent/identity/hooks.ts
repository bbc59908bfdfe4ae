/**
 * The engine's SyncHooks for identity (agent/engine/API.md): `capture` reads
 * the target's identity before it gets the new table; `restore` reads it
 * again (now the source's), reports each kept field, and writes the target's
 * own values back through the view (normal copy-on-write writes), only the
 * bytes that changed. What cannot be parsed is never written: the target's
 * own is a warning; a synced config that cannot be read, a reference that
 * cannot be mapped, or a file still naming the source refuses the sync before
 * anything is written (synced-scan.ts).
 *
 * Paths: the synced container's `name`, `uuid`, `labels`; for a VM each
 * member's fields prefixed with its role (`config.`, `disk0.`); a plain
 * vdisk/file sync has no prefix. README.md lists every field.
 */
import type { ContainerInfo, ContainerView, SyncContext, SyncHooks, SyncMember } from '../engine';
import { IDENTITY_CONFIG_UNREADABLE, IDENTITY_REFERENCE_UNMAPPED } from '../engine/errors';
import { detectFormat, FORMAT_LABEL, isConfigFormat, isDeclaredConfig, parseConfig } from './config-format';
import { type Captured, type Content, emptyContent, MAX_CONFIG_BYTES, ownValues, Reporter } from './content';
import type { FieldValue } from './fields';
import { metadataFields } from './file-meta';
import { FreshIdentity, hexDigits, substituteDigits, uniqueKind } from './fresh-identity';
import { DISK_GUID_FIELD, extractGpt, PARTITION_FIELD, restoreGpt } from './gpt';
import { extractMbr, restoreMbr } from './mbr';
import { pairByName } from './pair-by-name';
import { type Preserve, type PreserveFilter, preserveFilter } from './preserve';
import { checkReferenceMapUse } from './reference-map';
import {
  checkAllowed,
  checkReferenceMap,
  identityDigits,
  mapEntryFor,
  referenceMapping,
} from './reference-options';
import { referenceSpans, restoreReferences, type Unmapped } from './references';
import type { IdentityReference, IdentityReport } from './report';
import { replaceSpans } from './spans';
import { scanSynced, searchedDiskBytes } from './synced-scan';
import { replaceTokens } from './tokens';
import { macLine } from './vmx-references';
import { rewriteFile } from './write';

export { type Captured, MAX_CONFIG_BYTES } from './content';

// ignoreBOM keeps a byte-order mark in the text (as U+FEFF), so text and bytes stay the same length
// and a rewrite puts it back; without it the decoder drops it and every later byte shifts by 3.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function extractFile(view: ContainerView, role: string | null, info: ContainerInfo): Content {
  const out: Content = emptyContent();
  const declared = info.labels[FORMAT_LABEL];
  if (declared !== undefined && !isConfigFormat(declared)) {
    out.problems.push({
      field: null,
      code: 'IDENTITY_UNKNOWN_FORMAT',
      message: `label ${FORMAT_LABEL}="${declared}" names no known format (vmx, libvirt, cloud-init, network-config)`,
    });
    return out;
  }
  // A VM's `config` member, or a declared one, must parse; any other file is a config only if it looks like one.
  const required = isDeclaredConfig(role, info.labels);
  const size = view.size();
  if (size === 0) return out;
  if (size > MAX_CONFIG_BYTES) {
    if (required) {
      out.problems.push({
        field: null,
        code: 'IDENTITY_TOO_LARGE',
        message: `${size} bytes is more than a config file (${MAX_CONFIG_BYTES}); not parsed`,
      });
    }
    return out;
  }
  const bytes = view.read(0, size);
  out.bytes = bytes;
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    if (required)
      out.problems.push({ field: null, code: 'IDENTITY_UNPARSABLE', message: 'the file is not UTF-8 text' });
    return out;
  }
  const format = declared ?? detectFormat(text);
  if (format === null) {
    if (required) {
      out.problems.push({
        field: null,
        code: 'IDENTITY_UNPARSABLE',
        message: 'the file is not a known config format (vmx, libvirt domain XML, cloud-init meta-data)',
      });
    }
    return out;
  }
  let parsed: ReturnType<typeof parseConfig>;
  try {
    parsed = parseConfig(format, text);
  } catch (err) {
    // A parser bug must not fail a sync: the file is then not read, and never written.
    parsed = { ok: false, error: `the parser failed (${(err as Error)?.message ?? String(err)})` };
  }
  if (!parsed.ok) {
    out.problems.push({ field: null, code: 'IDENTITY_UNPARSABLE', message: `${format}: ${parsed.error}` });
    return out;
  }
  for (const span of parsed.spans) {
    if (span.list) out.lists.set(span.field, span.value);
    else if (!span.reference) out.fields.set(span.field, span.value);
  }
  out.references = referenceSpans(parsed.spans);
  out.devices = new Set(parsed.devices ?? []);
  out.named = parsed.named;
  for (const p of parsed.problems) {
    if (!out.fields.has(p.field) && !out.references.has(p.field))
      out.problems.push({
        field: p.field,
        code: 'IDENTITY_UNPARSABLE',
        message: p.message,
        refusesSync: p.refusesSync,
      });
  }
  out.config = { bytes, text, spans: parsed.spans };
  return out;
}

const VDISK_CONFIG = `it is a vdisk, and a config is read only from a file member: put each VM's config in a file container (create NAME --type file; write NAME 0 --file CONFIG; remove-member VM config; add-member VM config NAME), or, for a disk image that is no config (a cloud-init seed), use another role and no ${FORMAT_LABEL} label`;

function extract(member: SyncMember): Content {
  const { view } = member;
  if (view.type === 'file') return extractFile(view, member.role, member.target);
  const out: Content = emptyContent();
  if (view.type !== 'vdisk') return out;
  if (isDeclaredConfig(member.role, member.target.labels)) {
    // A disk image has no text to parse exactly (a fixed size, a filesystem): synced as it is, it would
    // give the target the source's name, MACs, disks and networks. So the sync refuses it (restore).
    out.problems.push({ field: null, code: 'IDENTITY_UNPARSABLE', message: VDISK_CONFIG });
    return out;
  }
  extractMbr(view, out);
  extractGpt(view, out);
  out.bytes = searchedDiskBytes(member);
  return out;
}

function apply(view: ContainerView, after: Content, wanted: Map<string, FieldValue>): void {
  if (after.config) {
    const { text, spans, bytes } = after.config;
    rewriteFile(view, bytes, Buffer.from(replaceSpans(text, spans, wanted), 'utf8'));
    return;
  }
  const mbr = wanted.get('mbr.signature');
  if (mbr !== undefined) restoreMbr(view, mbr.value);
  const partitions = new Map<number, string>();
  for (const [field, value] of wanted) {
    const m = PARTITION_FIELD.exec(field);
    if (m) partitions.set(Number(m[1]), value.value);
  }
  const disk = wanted.get(DISK_GUID_FIELD)?.value ?? null;
  if (disk !== null || partitions.size > 0) restoreGpt(view, disk, partitions);
}

function restoreMember(
  member: SyncMember,
  before: Content,
  keep: PreserveFilter,
  out: Reporter,
  seen: Set<string>,
  fresh: FreshIdentity,
  referenceMap: Record<string, string>,
  rename: Rename,
): { after: Content; wanted: Map<string, FieldValue> } {
  const prefix = member.role ? `${member.role}.` : '';
  const whole = member.role ?? 'content';
  const after = extract(member);
  pairByName(before, after);
  const problemFor = (content: Content, field: string) =>
    content.problems.find((p) => p.field === field || p.field === null);

  for (const p of before.problems) {
    const path = p.field === null ? whole : prefix + p.field;
    if (p.field === null ? !keep.active : !keep.selects(path, false)) continue;
    out.warn(
      path,
      p.code,
      `the target's ${p.field ?? 'content'} could not be read before the sync (${p.message}); it was not kept`,
    );
  }

  const wanted = new Map<string, FieldValue>();
  const inWholeLists = restoreWholeLists(prefix, before, after, keep, out, seen, wanted);
  for (const [field, value] of before.fields) {
    const path = prefix + field;
    seen.add(path);
    if (inWholeLists.has(field)) continue;
    const now = after.fields.get(field);
    if (!selects(keep, prefix, before, field)) {
      // The caller chose this, but the report is the operator's only record of it.
      if (now !== undefined && now.value !== value.value && !before.optIn.has(field))
        notKept(out, path, `the target's ${value.value}`, now.value);
      continue;
    }
    const unitValue = now === undefined ? otherKeyOfUnit(field, before, after) : undefined;
    if (unitValue !== undefined) {
      // Its whole line comes back with its unit (references.ts): production's NIC used the other MAC key.
      out.fields.push({ path, value: value.value, status: 'restored', sourceValue: unitValue });
    } else if (now === undefined) {
      const why = problemFor(after, field);
      if (why) {
        out.warn(
          path,
          why.code,
          `the synced content's ${field} cannot be read (${why.message}); the target's value ${value.value} was not written back`,
        );
      } else {
        out.warn(
          path,
          'IDENTITY_FIELD_MISSING',
          `the synced content has no ${field}; the target's value ${value.value} could not be kept`,
        );
      }
    } else if (now.value === value.value) {
      out.fields.push({ path, value: value.value, status: 'unchanged' });
    } else {
      const unwritable = cannotHold(after, field, value);
      if (unwritable !== null) {
        out.warn(
          path,
          'IDENTITY_UNPARSABLE',
          `the target's value ${value.value} cannot be written where the synced content has ${field} (${unwritable}); it holds the source's ${now.value}`,
        );
        continue;
      }
      wanted.set(field, value);
      out.fields.push({ path, value: value.value, status: 'restored', sourceValue: now.value });
    }
  }

  // Identity the target did not have would be the source's (a duplicate MAC or UUID on the network):
  // an identifier gets a fresh value of its own (fresh-identity.ts); anything else is warned about.
  for (const [field, value] of after.fields) {
    const path = prefix + field;
    seen.add(path);
    if (inWholeLists.has(field)) continue;
    if (before.fields.has(field) || problemFor(before, field)) continue;
    if (!selects(keep, prefix, after, field)) {
      if (!after.optIn.has(field)) notKept(out, path, 'a value of its own', value.value);
      continue;
    }
    // The target's unit has another key for it (a static MAC's address): this line is taken out (references.ts).
    if (otherKeyOfUnit(field, after, before) !== undefined) continue;
    const domain = smbiosFromDomain(field, value, after, wanted);
    if (domain !== null) {
      if (domain !== value.value) wanted.set(field, { value: domain, raw: domain, style: FRESH_STYLE });
      out.fields.push({
        path,
        value: domain,
        status: domain === value.value ? 'unchanged' : 'generated',
        sourceValue: value.value,
      });
      continue;
    }
    // The caller's map names the target's value (an address production gave the new NIC).
    const entry = mapEntryFor(referenceMap, value.value);
    if (entry !== undefined) {
      const written = inSourceNotation(field, value, entry.to);
      const unwritable = cannotHold(after, field, written);
      if (unwritable !== null) {
        out.warn(
          path,
          'IDENTITY_UNPARSABLE',
          `the mapped value ${written.value} cannot be written where the synced content has ${field} (${unwritable}); it holds the source's ${value.value}`,
        );
        continue;
      }
      wanted.set(field, written);
      out.fields.push({ path, value: written.value, status: 'mapped', sourceValue: value.value });
      continue;
    }
    const kind = uniqueKind(field);
    const made = kind === null ? null : fresh.valueFor(kind, value.value);
    if (made !== null) {
      // Written as the source's value was (its notation and quotes), as a mapped one is.
      wanted.set(field, inSourceNotation(field, value, made));
      out.fields.push({ path, value: made, status: 'generated', sourceValue: value.value });
      continue;
    }
    // A name made of the source's (`prod-k8s` in a clone's `<name>`, `prod-k8s-1` as hostname) takes the target's.
    const renamed = NAME_FIELD.test(field) ? replaceTokens(value.value, rename.from, rename.to) : value.value;
    if (renamed !== value.value) {
      const written = inQuotesOf(value, renamed);
      wanted.set(field, written);
      out.fields.push({ path, value: written.value, status: 'mapped', sourceValue: value.value });
      continue;
    }
    out.warn(
      path,
      'IDENTITY_FROM_SOURCE',
      `the target had no ${field} before the sync; it now holds the source's value ${value.value}`,
    );
  }

  return { after, wanted };
}

/** Fields that name the VM or host (a domain's `<name>`, `displayName`, a hostname or FQDN): only these are renamed. */
const NAME_FIELD = /(?:^|\.)(?:name|displayname|hostname|local-hostname|fqdn)$/i;

/** The source container's name, and the target's that takes its place in a name the target did not have. */
interface Rename {
  from: string;
  to: string;
}

/** A field `--preserve` did not select, so the source's value stands: a warning, as the report is the only record. */
function notKept(out: Reporter, path: string, instead: string, source: string): void {
  out.warn(
    path,
    'IDENTITY_FROM_SOURCE',
    `not kept (preserve does not select it): it now holds the source's value ${source} instead of ${instead}`,
  );
}

/** Why the synced config cannot hold `value` where it has `field` (ValueSpan.cannotHold); null when it can. */
function cannotHold(after: Content, field: string, value: FieldValue): string | null {
  for (const span of after.config?.spans ?? []) {
    const why = span.field === field ? span.cannotHold?.(value) : null;
    if (why) return why;
  }
  return null;
}

/**
 * For an identity field `has` holds whose whole line is a unit's (a .vmx MAC: vmx-references.ts), the
 * value `other` holds in the same device's unit under another identity key (production's generatedAddress
 * for staging's address); undefined when `other`'s device has no such unit.
 */
function otherKeyOfUnit(field: string, has: Content, other: Content): string | undefined {
  const line = has.references.get(macLine(field))?.reference;
  if (!line?.identityLine) return undefined;
  for (const span of other.references.values()) {
    const r = span.reference!;
    if (r.device === line.device && r.unit === line.unit && r.identityLine) return span.value.value;
  }
  return undefined;
}

/** Whether `preserve` keeps a field: by its own path, or (a list's item) by its list's. */
function selects(keep: PreserveFilter, prefix: string, content: Content, field: string): boolean {
  if (keep.selects(prefix + field, content.optIn.has(field))) return true;
  const list = /^(.*)\.\d+$/.exec(field)?.[1];
  return list !== undefined && content.lists.has(list) && keep.selects(prefix + list, false);
}

/**
 * A list both sides have whose lengths differ (staging has two addresses, production one) cannot pair
 * item by item: the target's whole list is written in the synced node's place, in the synced file's
 * style, and reported as the list. Returns the item fields it took care of (of both sides).
 */
function restoreWholeLists(
  prefix: string,
  before: Content,
  after: Content,
  keep: PreserveFilter,
  out: Reporter,
  seen: Set<string>,
  wanted: Map<string, FieldValue>,
): Set<string> {
  const handled = new Set<string>();
  for (const list of [...before.lists.keys(), ...after.lists.keys()]) seen.add(prefix + list);
  for (const [list, mine] of before.lists) {
    const now = after.lists.get(list);
    const mineItems = mine.items ?? [];
    const nowItems = now?.items ?? [];
    if (now === undefined || mineItems.length === nowItems.length) continue;
    const items = (n: number) => Array.from({ length: n }, (_, i) => `${list}.${i}`);
    const own = items(mineItems.length);
    for (const field of [...own, ...items(nowItems.length)]) {
      handled.add(field);
      seen.add(prefix + field);
    }
    if (![list, ...own].some((field) => keep.selects(prefix + field, before.optIn.has(field)))) continue;
    wanted.set(list, mine);
    out.fields.push({ path: prefix + list, value: mine.value, status: 'restored', sourceValue: now.value });
  }
  return handled;
}

/**
 * The SMBIOS system UUID the target never had is its domain's <uuid> (libvirt refuses a domain whose
 * sysinfo UUID differs); a serial that was the source's domain UUID (Nova writes it so) is too. Null
 * for any other value, or a domain without a <uuid>: those get a fresh value like any identifier.
 */
function smbiosFromDomain(
  field: string,
  value: FieldValue,
  after: Content,
  wanted: Map<string, FieldValue>,
): string | null {
  if (!field.startsWith('libvirt.sysinfo.')) return null;
  const source = after.fields.get('libvirt.uuid')?.value;
  if (source === undefined) return null;
  const own = wanted.get('libvirt.uuid')?.value ?? source;
  if (field === 'libvirt.sysinfo.system.uuid') return own;
  const digits = hexDigits(value.value);
  return digits.length === 32 && digits === hexDigits(source) ? own : null;
}

/** A style no parser uses: a fresh value is encoded for the context it goes in. */
const FRESH_STYLE = 'fresh';

/** How a sync treats references to the source (references.ts, source-scan.ts). */
export interface ReferenceOptions {
  /** Source value → the target's, for references the target never had. */
  referenceMap?: Record<string, string>;
  /** Names or UUIDs of the source's containers a synced config may still hold (reported as warnings). */
  allowSourceReferences?: string[];
}

export function createIdentityHooks(
  preserve: Preserve = 'default',
  options: ReferenceOptions = {},
): SyncHooks<Captured, IdentityReport> {
  const keep = preserveFilter(preserve);
  const referenceMap = checkReferenceMap(options.referenceMap);
  const allowed = checkAllowed(options.allowSourceReferences);
  return {
    capture(context: SyncContext): Captured {
      const captured: Captured = new Map();
      for (const member of context.members) captured.set(member.role ?? '', extract(member));
      return captured;
    },
    restore(context: SyncContext, captured: Captured): IdentityReport {
      const out = new Reporter();
      const seen = new Set<string>();
      const isVm = context.target.type === 'vm';
      const metadata = (prefix: string, info: ContainerInfo) => {
        for (const f of metadataFields(prefix, info)) {
          out.fields.push(f);
          seen.add(f.path);
        }
      };
      metadata('', context.target);
      const mapping = referenceMapping(context, captured, referenceMap);
      const fresh = new FreshIdentity(context.target.uuid, ownValues(captured));
      const writes: Array<{ member: SyncMember; after: Content; wanted: Map<string, FieldValue> }> = [];
      const unmapped: Unmapped[] = [];
      const references: IdentityReference[] = [];
      for (const member of context.members) {
        if (isVm) metadata(`${member.role}.`, member.target);
        const before = captured.get(member.role ?? '') ?? emptyContent();
        const { after, wanted } = restoreMember(member, before, keep, out, seen, fresh, referenceMap, {
          from: context.source.container,
          to: context.target.name,
        });
        const prefix = member.role ? `${member.role}.` : '';
        const refs = restoreReferences(prefix, before.config ? before : null, after, mapping);
        for (const [field, value] of refs.wanted) wanted.set(field, value);
        unmapped.push(...refs.unmapped);
        references.push(...refs.references);
        for (const r of refs.references) seen.add(r.path);
        // An unreadable synced config has its own warning; its references are not missing, just unread.
        for (const m of after.config ? refs.missing : []) {
          seen.add(m.path);
          out.warn(
            m.path,
            'IDENTITY_FIELD_MISSING',
            `the synced config has no ${m.path.slice(prefix.length)}; the target's reference ${m.value} is not in it any more`,
          );
        }
        for (const r of refs.removedFromSource) {
          out.warn(
            r.path,
            'IDENTITY_SOURCE_REMOVED',
            `the target has no ${r.path.slice(prefix.length)} of its own: the source's (${r.value.slice(0, 64)}) is taken out of the synced config`,
          );
        }
        writes.push({ member, after, wanted });
      }
      // All or nothing: a synced config whose references cannot be read, or a reference to the source
      // that cannot be mapped, refuses the sync before anything is written (else it would keep the source's).
      const unreadable = writes.flatMap(({ member, after }) =>
        after.problems
          .filter((p) => p.field === null || p.refusesSync)
          .map((p) => ({
            member: member.role ?? member.target.name,
            reason: p.field === null ? p.message : `${p.field}: ${p.message}`,
          })),
      );
      if (unreadable.length > 0)
        throw IDENTITY_CONFIG_UNREADABLE(context.target.name, unreadable, context.operation);
      if (unmapped.length > 0)
        throw IDENTITY_REFERENCE_UNMAPPED(context.target.name, unmapped, context.operation);
      checkReferenceMapUse(
        context.target.name,
        context.operation ?? 'sync',
        referenceMap,
        { before: [...captured.values()], after: writes.map((w) => w.after) },
        { fields: out.fields, references },
        (path, code, message) => out.warn(path, code, message),
      );
      for (const { member, after, wanted } of writes) if (wanted.size > 0) apply(member.view, after, wanted);
      scanSynced(context, captured, writes, allowed, out);
      let blocksWritten = 0;
      for (const member of context.members) blocksWritten += member.view.blocksWritten();
      const roles = new Set(context.members.map((m) => m.role));
      for (const name of keep.unmatched(seen, (role) => isVm && !roles.has(role)))
        out.warn(
          name,
          'IDENTITY_FIELD_MISSING',
          `preserve names ${name}, but the target has no ${/[*?]/.test(name) ? 'field it matches' : 'such field'}`,
        );
      return { fields: out.fields, warnings: out.warnings, blocksWritten, references };
    },
  };
}

/**
 * A fresh or mapped MAC or UUID written in the source value's notation (`52-54-00-…` given for a libvirt
 * `52:54:00:…`: libvirt rejects the dashed form); any other value (a serial, a name) as given, in
 * the source's quotes. A DST that is not a value of the same kind stays as given: the map check
 * (reference-map.ts) refuses it.
 */
function inSourceNotation(field: string, source: FieldValue, given: string): FieldValue {
  const kind = uniqueKind(field);
  const digits = identityDigits(given);
  if (
    kind === null ||
    kind === 'serial' ||
    digits === null ||
    digits.length !== hexDigits(source.value).length
  )
    return inQuotesOf(source, given);
  const value = substituteDigits(source.value, digits);
  return hexDigits(source.raw) === hexDigits(source.value)
    ? { value, raw: substituteDigits(source.raw, digits), style: source.style }
    : inQuotesOf(source, value);
}

/**
 * `value` written in the quotes the source's value had (a YAML MAC unquoted is a base-60 number);
 * encoded anew where the source's text was not simply the value in quotes, or `value` holds a quote.
 */
function inQuotesOf(source: FieldValue, value: string): FieldValue {
  const q = source.raw[0];
  const quoted =
    (q === '"' || q === "'") && source.raw === `${q}${source.value}${q}` && !/["'\\]/.test(value);
  return quoted
    ? { value, raw: `${q}${value}${q}`, style: source.style }
    : { value, raw: value, style: FRESH_STYLE };
}
