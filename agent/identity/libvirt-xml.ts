/**
 * libvirt domain XML: the domain's <name> and <uuid>, and each <interface>'s
 * <mac address=…/>. Values are found as text spans, so the rest of the
 * document stays byte for byte as it was (no XML round-trip).
 */
import type { ValueSpan } from './spans';

export function looksLikeLibvirt(text: string): boolean {
  return /<domain[\s>]/.test(text) && /<\/domain>/.test(text);
}

/** Character ranges of nested elements whose <name>/<uuid> are not the domain's (e.g. <metadata>, <cpu>). */
function ignoredRanges(text: string, from: number): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  for (const tag of ['metadata', 'cpu', 'sysinfo', 'devices', 'seclabel']) {
    const re = new RegExp(`<${tag}[\\s>][\\s\\S]*?</${tag}>`, 'g');
    re.lastIndex = from;
    for (const m of text.matchAll(re)) ranges.push([m.index!, m.index! + m[0].length]);
  }
  return ranges;
}

export function parseLibvirt(text: string): ValueSpan[] {
  const spans: ValueSpan[] = [];
  const domain = /<domain[\s>]/.exec(text);
  if (!domain) return spans;
  const ignored = ignoredRanges(text, domain.index);
  const inIgnored = (at: number) => ignored.some(([a, b]) => at >= a && at < b);
  for (const field of ['name', 'uuid']) {
    const re = new RegExp(`<${field}>([^<]*)</${field}>`, 'g');
    for (const m of text.matchAll(re)) {
      if (m.index! < domain.index || inIgnored(m.index!)) continue;
      const start = m.index! + field.length + 2;
      spans.push({ field: `libvirt.${field}`, value: m[1]!, start, end: start + m[1]!.length });
      break;
    }
  }
  let index = 0;
  for (const iface of text.matchAll(/<interface[\s>][\s\S]*?<\/interface>/g)) {
    const mac = /<mac\s+address=(['"])([^'"]*)\1/.exec(iface[0]);
    if (mac) {
      const start = iface.index! + mac.index + mac[0].indexOf(mac[1]!) + 1;
      spans.push({
        field: `libvirt.interface${index}.mac`,
        value: mac[2]!,
        start,
        end: start + mac[2]!.length,
      });
    }
    index++;
  }
  return spans;
}
