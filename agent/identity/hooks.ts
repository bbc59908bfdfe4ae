/**
 * Identity hooks for the engine's sync: `capture` reads the target's identity
 * before the new table, `restore` reads it again after (now the source's),
 * and writes the target's own values back with normal copy-on-write writes,
 * touching only the bytes that hold them. Nothing unparsable is written: it
 * becomes a warning. Field paths: `name`, `uuid`, and per member
 * `<role>.<field>` (a plain vdisk/file sync has no role prefix).
 */
import type { ContainerInfo, ContainerView, SyncContext, SyncHooks } from '../engine';
import { detectFormat, parseConfig } from './config-format';
import { type Extracted, emptyExtracted, type Warning } from './fields';
import { extractGpt, restoreGpt } from './gpt';
import { extractMbr, restoreMbr } from './mbr';
import { type Preserve, preserveFilter } from './preserve';
import { replaceSpans } from './spans';

export interface IdentityField {
  path: string;
  value: string;
  status: 'restored' | 'unchanged';
  sourceValue?: string;
}

export interface IdentityReport {
  fields: IdentityField[];
  warnings: Warning[];
  blocksWritten: number;
}

/** Config files larger than this are not parsed (a VM config is a few KiB). */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

function extract(view: ContainerView): Extracted {
  const out = emptyExtracted();
  if (view.type === 'vdisk') {
    extractMbr(view, out);
    extractGpt(view, out);
  } else if (view.type === 'file' && view.size() > 0) {
    if (view.size() > MAX_CONFIG_BYTES) return out;
    const bytes = view.read(0, view.size());
    const text = bytes.toString('utf8');
    if (!Buffer.from(text, 'utf8').equals(bytes)) {
      out.warnings.push({
        path: 'config',
        code: 'IDENTITY_UNPARSABLE',
        message: 'the file is not UTF-8 text',
      });
      return out;
    }
    const format = detectFormat(text);
    if (format) for (const span of parseConfig(format, text)) out.fields.set(span.field, span.value);
  }
  return out;
}

/** Metadata the sync never takes from the source: reported as kept. */
function metadataFields(prefix: string, c: ContainerInfo): IdentityField[] {
  const fields: IdentityField[] = [];
  if (c.file) {
    fields.push({ path: `${prefix}file.mode`, value: `0${c.file.mode.toString(8)}`, status: 'unchanged' });
    fields.push({ path: `${prefix}file.owner`, value: `${c.file.uid}:${c.file.gid}`, status: 'unchanged' });
  }
  if (Object.keys(c.labels).length > 0) {
    fields.push({ path: `${prefix}labels`, value: JSON.stringify(c.labels), status: 'unchanged' });
  }
  return fields;
}

function restoreConfig(view: ContainerView, wanted: Map<string, string>): void {
  const old = view.read(0, view.size());
  const text = old.toString('utf8');
  const format = detectFormat(text)!;
  const next = Buffer.from(replaceSpans(text, parseConfig(format, text), wanted), 'utf8');
  let first = 0;
  while (first < old.length && first < next.length && old[first] === next[first]) first++;
  if (first === old.length && first === next.length) return;
  // Only from the first changed byte on: a value of another length shifts the rest of the file.
  if (first < next.length) view.write(first, next.subarray(first));
  if (next.length < old.length) view.truncate(next.length);
}

export function createIdentityHooks(
  preserve: Preserve = 'default',
): SyncHooks<Map<string, Extracted>, IdentityReport> {
  const keep = preserveFilter(preserve);
  return {
    capture(context: SyncContext) {
      const captured = new Map<string, Extracted>();
      for (const member of context.members) captured.set(member.role ?? '', extract(member.view));
      return captured;
    },
    restore(context: SyncContext, captured: Map<string, Extracted>): IdentityReport {
      const report: IdentityReport = {
        fields: [
          { path: 'name', value: context.target.name, status: 'unchanged' },
          { path: 'uuid', value: context.target.uuid, status: 'unchanged' },
        ],
        warnings: [],
        blocksWritten: 0,
      };
      const isVm = context.target.type === 'vm';
      if (!isVm) report.fields.push(...metadataFields('', context.target));
      for (const member of context.members) {
        const prefix = member.role ? `${member.role}.` : '';
        if (isVm) report.fields.push(...metadataFields(prefix, member.target));
        const before = captured.get(member.role ?? '')!;
        const after = extract(member.view);
        for (const w of [...before.warnings, ...after.warnings]) {
          if (!report.warnings.some((x) => x.path === prefix + w.path && x.message === w.message)) {
            report.warnings.push({ ...w, path: prefix + w.path });
          }
        }
        const wanted = new Map<string, string>();
        for (const [field, value] of before.fields) {
          const path = prefix + field;
          if (!keep(path, before.optIn.has(field))) continue;
          const now = after.fields.get(field);
          if (now === undefined) {
            report.warnings.push({
              path,
              code: 'IDENTITY_FIELD_MISSING',
              message: `the synced content has no ${field}; the target's value ${value} could not be kept`,
            });
            continue;
          }
          if (now === value) report.fields.push({ path, value, status: 'unchanged' });
          else {
            wanted.set(field, value);
            report.fields.push({ path, value, status: 'restored', sourceValue: now });
          }
        }
        if (wanted.size === 0) continue;
        if (member.view.type === 'file') restoreConfig(member.view, wanted);
        else {
          const mbr = wanted.get('mbr.signature');
          if (mbr !== undefined) restoreMbr(member.view, mbr);
          const partitions = new Map<number, string>();
          for (const [field, value] of wanted) {
            const m = /^gpt\.partition(\d+)\.uniqueGuid$/.exec(field);
            if (m) partitions.set(Number(m[1]), value);
          }
          const disk = wanted.get('gpt.diskGuid') ?? null;
          if (disk !== null || partitions.size > 0) restoreGpt(member.view, disk, partitions);
        }
        report.blocksWritten += member.view.blocksWritten();
      }
      return report;
    },
  };
}
