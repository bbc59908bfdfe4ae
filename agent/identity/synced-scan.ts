/**
 * The safety net after the restore: every synced file member, and every
 * synced VM member vdisk of at most MAX_CONFIG_BYTES (a cloud-init seed image,
 * a config drive), is searched for the source's container names and UUIDs, and for
 * identity values of the source's that the restore replaced; a hit refuses
 * the sync (all or nothing) unless the caller allowed that name. Cost: one
 * pass over each such member; a bigger file is a warning, not searched; a
 * bigger vdisk (a data or root disk) is neither read nor searched.
 */
import type { SyncContext, SyncMember } from '../engine';
import { IDENTITY_SOURCE_REFERENCE } from '../engine/errors';
import { type Captured, type Content, MAX_CONFIG_BYTES, ownValues, type Reporter } from './content';
import type { FieldValue } from './fields';
import { hexDigits } from './fresh-identity';
import {
  identityForms,
  type SourceHit,
  type SourceName,
  scanBytesForSource,
  scanForSource,
  uuidForms,
} from './source-scan';

/**
 * The safety net: no synced file member (a config, a launch script, an EFI variable store: whatever
 * its role or format), nor small vdisk (a seed image), may still name a container of the source (or
 * its UUID), nor hold an identity value of the source's that the restore replaced in any synced config.
 */
export function scanSynced(
  context: SyncContext,
  captured: Captured,
  writes: Array<{ member: SyncMember; after: Content; wanted: Map<string, FieldValue> }>,
  allowed: Set<string>,
  out: Reporter,
): void {
  const names: SourceName[] = [];
  for (const c of context.sourceContainers) {
    names.push({ name: c.name, forms: [c.name] });
    if (c.uuid) names.push({ name: c.uuid, forms: uuidForms(c.uuid) });
  }
  names.push(...replacedValues(writes, captured));
  const targetNames = [context.target.name, ...Object.values(context.target.members)];
  const found: Array<{ path: string; name: string; line: number; text: string }> = [];
  for (const { member, after, wanted } of writes) {
    if (member.view.type === 'vdisk' ? !searchesDisk(member) : member.view.type !== 'file') continue;
    const path = member.role ?? 'content';
    const before = captured.get(member.role ?? '');
    const size = member.view.size();
    if (size === 0) continue;
    let hits: SourceHit[];
    if (after.config) {
      const text = member.view.read(0, size).toString('utf8');
      // A line with an identity value the caller chose not to keep (preserve) holds the source's on purpose.
      const chosen = after.config.spans
        .filter((span) => !span.reference && !wanted.has(span.field) && before?.fields.has(span.field))
        .map((span) => lineAt(after.config!.text, span.start));
      hits = scanForSource(text, before?.config?.text ?? null, names, targetNames, chosen);
    } else if (size > MAX_CONFIG_BYTES) {
      // Not refused: a VM may well carry a kernel or an ISO as a file member. Not silent either.
      out.warn(
        path,
        'IDENTITY_TOO_LARGE',
        `${size} bytes is more than the safety net searches (${MAX_CONFIG_BYTES}): not searched for the source's names; check it names none of ${context.sourceContainers.map((c) => c.name).join(', ')}`,
      );
      continue;
    } else {
      hits = scanBytesForSource(member.view.read(0, size), before?.bytes ?? null, names, targetNames);
    }
    const allowedHits: string[] = [];
    for (const hit of hits) {
      if (allowed.has(hit.name.toLowerCase()))
        allowedHits.push(`line ${hit.line} (${hit.name}): ${hit.text}`);
      else found.push({ path, ...hit });
    }
    if (allowedHits.length > 0) {
      out.warn(
        path,
        'IDENTITY_SOURCE_REFERENCE',
        `still names the source (allowed by allowSourceReferences): ${allowedHits.join('; ')}`,
      );
    }
  }
  if (found.length > 0) throw IDENTITY_SOURCE_REFERENCE(context.target.name, found, context.operation);
}

/** Identity values of the source's that the restore replaced in a synced config (restored, generated, mapped). */
function replacedValues(
  writes: Array<{ after: Content; wanted: Map<string, FieldValue> }>,
  captured: Captured,
): SourceName[] {
  const values = new Map<string, SourceName>();
  // A value the target holds itself (its NIC1's MAC was production's NIC0's) is its own, not the source's.
  const own = new Set([...ownValues(captured)].map(hexDigits));
  for (const { after, wanted } of writes) {
    if (!after.config) continue;
    for (const [field, value] of wanted) {
      const source = after.fields.get(field)?.value;
      own.add(hexDigits(value.value));
      if (source === undefined) continue;
      const forms = identityForms(source);
      if (forms) values.set(hexDigits(source), { name: source, forms });
    }
  }
  for (const digits of own) values.delete(digits);
  return [...values.values()];
}

function lineAt(text: string, offset: number): string {
  const start = text.lastIndexOf('\n', offset - 1) + 1;
  const end = text.indexOf('\n', offset);
  return text.slice(start, end < 0 ? text.length : end).replace(/\r$/, '');
}

/**
 * Whether the safety net searches a vdisk: a VM's member of at most MAX_CONFIG_BYTES (a cloud-init seed
 * image, a config drive), which the VM's identity would reach the guest by. A bigger one (a root or data
 * disk) holds production's data by design, and reading it would make the sync cost its size. A plain
 * vdisk sync or clone has no VM identity to leak, only its own name, which its data may well hold
 * (the word "gold" in the golden image "gold").
 */
function searchesDisk(member: SyncMember): boolean {
  const size = member.view.size();
  return member.role !== null && size > 0 && size <= MAX_CONFIG_BYTES;
}

/** A vdisk's bytes when the safety net searches it (searchesDisk), else undefined: never reads a big disk. */
export function searchedDiskBytes(member: SyncMember): Buffer | undefined {
  return searchesDisk(member) ? member.view.read(0, member.view.size()) : undefined;
}
