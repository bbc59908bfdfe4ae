/**
 * VMware .vmx: `key = "value"` lines. Identity: displayName, uuid.bios,
 * uuid.location, vc.uuid, ethernetN.generatedAddress, ethernetN.address,
 * guestinfo.hostname.
 */
import type { ValueSpan } from './spans';

const IDENTITY =
  /^(displayName|uuid\.bios|uuid\.location|vc\.uuid|ethernet\d+\.generatedAddress|ethernet\d+\.address|guestinfo\.hostname)$/i;
const LINE = /^[ \t]*([A-Za-z0-9_.:-]+)[ \t]*=[ \t]*"([^"\n]*)"[ \t]*$/gm;

export function looksLikeVmx(text: string): boolean {
  return /^[ \t]*(config\.version|virtualHW\.version|displayName|\.encoding)[ \t]*=[ \t]*"/m.test(text);
}

export function parseVmx(text: string): ValueSpan[] {
  const spans: ValueSpan[] = [];
  for (const match of text.matchAll(LINE)) {
    const key = match[1]!;
    if (!IDENTITY.test(key)) continue;
    const valueStart = match.index! + match[0].indexOf('"') + 1;
    spans.push({ field: key, value: match[2]!, start: valueStart, end: valueStart + match[2]!.length });
  }
  return spans;
}
