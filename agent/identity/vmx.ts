/**
 * VMware .vmx: one `key = "value"` per line. Keys are case-insensitive, so
 * fields get canonical names: displayName, uuid.bios, uuid.location, vc.uuid,
 * ethernetN.generatedAddress, ethernetN.address, guestinfo.hostname.
 * Values escape special characters as |XX (hex), e.g. `"` as |22.
 * A key that appears twice keeps the last value (as VMware reads it), and a
 * restore rewrites every occurrence. CRLF files are fine.
 */
import type { FieldValue } from './fields';
import { type ParsedConfig, sameStyleOr, type ValueSpan } from './spans';
import { vmxNames, vmxReference } from './vmx-references';

const STYLE = 'vmx';
const FIXED = new Map(
  ['displayName', 'uuid.bios', 'uuid.location', 'vc.uuid', 'guestinfo.hostname'].map((k) => [
    k.toLowerCase(),
    k,
  ]),
);
const ETHERNET = /^ethernet(\d+)\.(generatedaddress|address)$/;
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
  if (!eth) return null;
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
  for (const m of text.matchAll(KEY)) {
    const identity = vmxField(m[1]!);
    const field = identity ?? vmxReference(m[1]!);
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
    const fieldValue: FieldValue = { value: decodeVmx(raw), raw, style: STYLE };
    const span: ValueSpan = { field, value: fieldValue, start, end: start + raw.length, encode };
    if (!identity) {
      span.reference = {
        ...(field.includes('.') ? { device: canonicalDevice(field.slice(0, field.indexOf('.'))) } : {}),
        names: vmxNames(fieldValue.value),
        rewrite: (map) => encodeVmx(map(fieldValue.value)),
      };
    }
    spans.push(span);
  }
  // Devices (`ethernet1`, `scsi0:1`): any key names its device, `present` or not.
  const devices = new Set<string>();
  for (const m of text.matchAll(KEY)) {
    const dot = m[1]!.indexOf('.');
    if (dot > 0) devices.add(canonicalDevice(m[1]!.slice(0, dot)));
  }
  return { ok: true, spans, problems, devices: [...devices] };
}

/** Device prefixes as the reference paths spell them (lower case: `ethernet0`, `scsi0:1`). */
const canonicalDevice = (prefix: string) => prefix.toLowerCase();
