/**
 * VMware .vmx: one `key = "value"` per line. Keys are case-insensitive, so
 * fields get canonical names: displayName, uuid.bios, uuid.location, vc.uuid,
 * ethernetN.generatedAddress, ethernetN.address, guestinfo.hostname, and any
 * other guestinfo.* key (lower case: guestinfo.ipaddr).
 * Values escape special characters as |XX (hex), e.g. `"` as |22.
 * A key that appears twice keeps the last value (as VMware reads it), and a
 * restore rewrites every occurrence. CRLF files are fine.
 */
import type { FieldValue } from './fields';
import { type ParsedConfig, sameStyleOr, type ValueSpan } from './spans';
import {
  CLOUD_INIT_UNIT,
  ESXI_RUNTIME_UNIT,
  MAC_UNIT,
  macLine,
  vmxNames,
  vmxReference,
} from './vmx-references';

const STYLE = 'vmx';
/** A reference's whole line. */
const LINE_STYLE = 'vmx-line';
const FIXED = new Map(
  ['displayName', 'uuid.bios', 'uuid.location', 'vc.uuid', 'guestinfo.hostname'].map((k) => [
    k.toLowerCase(),
    k,
  ]),
);
const ETHERNET = /^ethernet(\d+)\.(generatedaddress|address)$/;
/** Other guestinfo keys (set per VM, e.g. an OVF's guestinfo.ipaddr): identity, by their lower-case names. */
const GUESTINFO = /^guestinfo\.[a-z0-9_.:-]+$/;
/** A key at the start of a line (the first one may follow a UTF-8 byte-order mark) followed by `=`. */
const KEY = /^\uFEFF?[ \t]*([A-Za-z0-9_.:-]+)[ \t]*=(.*?)\r?$/gm;
/** What follows the `=` on a well-formed line: a quoted value, an optional comment. */
const VALUE = /^[ \t]*"([^"\r\n]*)"[ \t]*(?:#.*)?$/;

/** The canonical field name of an identity key, or null. */
export function vmxField(key: string): string | null {
  const lower = key.toLowerCase();
  const fixed = FIXED.get(lower);
  if (fixed) return fixed;
  const eth = ETHERNET.exec(lower);
  if (!eth) return GUESTINFO.test(lower) && !vmxReference(lower) ? lower : null;
  return `ethernet${eth[1]}.${eth[2] === 'address' ? 'address' : 'generatedAddress'}`;
}

export const decodeVmx = (raw: string): string =>
  raw.replace(/\|([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));

/** `"`, `|`, `#` and control characters as |XX (what VMware writes). */
export const encodeVmx = (value: string): string =>
  [...value]
    .map((c) => {
      const code = c.charCodeAt(0);
      return c === '"' || c === '|' || c === '#' || code < 0x20 || code === 0x7f
        ? `|${code.toString(16).toUpperCase().padStart(2, '0')}`
        : c;
    })
    .join('');

export function looksLikeVmx(text: string): boolean {
  return /^\uFEFF?[ \t]*(\.encoding|config\.version|virtualHW\.version)[ \t]*=[ \t]*"/im.test(text);
}

export function parseVmx(text: string): ParsedConfig {
  const spans: ValueSpan[] = [];
  const problems: Array<{ field: string; message: string }> = [];
  const encode = sameStyleOr(STYLE, encodeVmx);
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  for (const m of text.matchAll(KEY)) {
    const identity = vmxField(m[1]!);
    const reference = identity ? null : vmxReference(m[1]!);
    const field = identity ?? reference?.field;
    if (!field) continue;
    const rest = m[2]!;
    const value = VALUE.exec(rest);
    if (!value) {
      problems.push({ field, message: `the line for ${m[1]} is not key = "value"` });
      continue;
    }
    const start =
      m.index! + m[0].length - rest.length - (m[0].endsWith('\r') ? 1 : 0) + rest.indexOf('"') + 1;
    const raw = value[1]!;
    const decoded = decodeVmx(raw);
    if (!reference) {
      const fieldValue: FieldValue = { value: decoded, raw, style: STYLE };
      spans.push({ field, value: fieldValue, start, end: start + raw.length, encode });
      // A MAC's line is also one of its NIC's MAC unit: the target's key (address or generatedAddress) is kept.
      if (ETHERNET.test(m[1]!.toLowerCase())) {
        const mac = { field: macLine(field), unit: MAC_UNIT, kind: true, identityLine: true as const };
        spans.push(referenceLine(text, m, eol, mac.field, mac, decoded, start, start + raw.length));
      }
      continue;
    }
    spans.push(referenceLine(text, m, eol, field, reference, decoded, start, start + raw.length));
  }
  // Devices (`ethernet1`, `scsi0:1`): any key names its device, `present` or not.
  const devices = new Set<string>();
  for (const m of text.matchAll(KEY)) {
    const dot = m[1]!.indexOf('.');
    if (dot > 0) devices.add(canonicalDevice(m[1]!.slice(0, dot)));
  }
  return { ok: true, spans, problems, devices: [...devices] };
}

/**
 * A reference is its whole line (with its line ending): the target's line is written back as it
 * was, a key the target lacks is taken out, and one only the target has is added (references.ts).
 */
function referenceLine(
  text: string,
  m: RegExpMatchArray,
  eol: string,
  field: string,
  reference: NonNullable<ReturnType<typeof vmxReference>> & { identityLine?: true },
  value: string,
  valueStart: number,
  valueEnd: number,
): ValueSpan {
  const start = m.index! + (m[0].startsWith('\uFEFF') ? 1 : 0);
  const lineEnd = m.index! + m[0].length;
  const end = text[lineEnd] === '\n' ? lineEnd + 1 : lineEnd;
  const ownsEol = end > lineEnd;
  const line = text.slice(start, end);
  const device = field.includes('.') ? canonicalDevice(field.slice(0, field.indexOf('.'))) : undefined;
  return {
    field,
    value: { value, raw: line, style: LINE_STYLE },
    start,
    end,
    // Lines from the other file take this file's line ending (the last line keeps having none), and
    // this line's device: the target's line of another device speaks for this one (rewiring.ts).
    encode: (v) => {
      const body = v.raw.replace(/\r?\n$/, '');
      if (body === '') return '';
      const lines = body.split(/\r?\n/).map((l) => onDevice(l, device, m[1]!));
      return lines.join(eol) + (ownsEol ? eol : '');
    },
    reference: {
      ...(device ? { device } : {}),
      ...(reference.unit ? { unit: reference.unit } : {}),
      ...(reference.identityLine ? { identityLine: true as const } : {}),
      // Staging must not boot with production's cloud-init data: without its own, production's goes.
      // Nor name production's runtime files (swap, logs): a staging VM that never ran has none yet.
      ...(reference.unit === CLOUD_INIT_UNIT || reference.unit === ESXI_RUNTIME_UNIT
        ? { removeUnlessTargetHas: true }
        : {}),
      names: reference.kind || reference.unit === CLOUD_INIT_UNIT ? [] : vmxNames(value),
      rewrite: (map) => text.slice(start, valueStart) + encodeVmx(map(value)) + text.slice(valueEnd, end),
    },
  };
}

/**
 * `line` (a `key = "value"` line) of another device of the same kind (`scsi0:1` for `scsi0:0`) as a key
 * of `device`, spelt as `key` spells it; any other line as it is (a guestinfo line added after a disk's).
 */
function onDevice(line: string, device: string | undefined, key: string): string {
  if (device === undefined) return line;
  const kind = (prefix: string) => canonicalDevice(prefix).replace(/[\d:]+$/, '');
  return line.replace(/^([ \t]*)([^.=\s]+)\./, (all, indent: string, prefix: string) =>
    canonicalDevice(prefix) === device || kind(prefix) !== kind(device)
      ? all
      : `${indent}${key.slice(0, key.indexOf('.'))}.`,
  );
}

/** Device prefixes as the reference paths spell them (lower case: `ethernet0`, `scsi0:1`). */
const canonicalDevice = (prefix: string) => prefix.toLowerCase();
