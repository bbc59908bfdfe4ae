/**
 * libvirt domain XML: the domain's <name> and <uuid> (children of <domain>),
 * and the address of each <interface>'s <mac> under <devices>, numbered in
 * document order from 0. The element tree comes from the one XML scanner
 * (xml-elements.ts: comments, CDATA, processing instructions and the doctype
 * skipped), so a <name> inside <metadata> or a commented-out interface is not
 * taken; values are text spans and the rest of the document stays byte for
 * byte as it was (no XML library round-trip).
 */
import { BadEscape, fromCodePoint } from './code-point';
import { libvirtReferences } from './libvirt-references';
import { type ParsedConfig, sameStyleOr, type ValueSpan } from './spans';
import { attribute, child, scanXml } from './xml-elements';

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

export const decodeXml = (raw: string): string =>
  raw.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-z]+);/g, (m, e: string) => {
    if (e.startsWith('#x')) return fromCodePoint(Number.parseInt(e.slice(2), 16), m);
    if (e.startsWith('#')) return fromCodePoint(Number.parseInt(e.slice(1), 10), m);
    return ENTITIES[e] ?? m;
  });

const encodeText = (value: string) =>
  value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const encodeAttribute = (quote: string) => (value: string) =>
  encodeText(value).replace(quote === '"' ? /"/g : /'/g, quote === '"' ? '&quot;' : '&apos;');

export function looksLikeLibvirt(text: string): boolean {
  return /^\uFEFF?\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--[\s\S]*?-->\s*)*<domain[\s>]/.test(text);
}

export function parseLibvirt(text: string): ParsedConfig {
  const tree = scanXml(text);
  if (!tree.ok) return tree;
  const domain = tree.root;
  if (domain.name !== 'domain') return { ok: false, error: 'the root element is not <domain>' };
  const spans: ValueSpan[] = [];
  const problems: Array<{ field: string; message: string }> = [];
  /** A value's decoded text, or null (and a problem) when an escape names no character. */
  const decoded = (field: string, raw: string): string | null => {
    try {
      return decodeXml(raw);
    } catch (err) {
      if (!(err instanceof BadEscape)) throw err;
      problems.push({ field, message: err.message });
      return null;
    }
  };
  // The domain's own <name> and <uuid> (the first of each): text content, never markup.
  for (const tag of ['name', 'uuid']) {
    const element = child(domain, tag);
    if (element === undefined || element.end === element.contentEnd) continue; // absent or <x/>
    const field = `libvirt.${tag}`;
    const raw = text.slice(element.contentStart, element.contentEnd);
    if (raw.includes('<')) {
      problems.push({ field, message: `<${tag}> holds markup, not text` });
      continue;
    }
    const value = decoded(field, raw);
    if (value !== null)
      spans.push({
        field,
        value: { value, raw, style: 'text' },
        start: element.contentStart,
        end: element.contentEnd,
        encode: sameStyleOr('text', encodeText),
      });
  }
  // Each <interface> under <devices>, numbered in document order: its (first) <mac address>.
  const interfaces = domain.children
    .filter((c) => c.name === 'devices')
    .flatMap((devices) => devices.children.filter((c) => c.name === 'interface'));
  for (const [index, iface] of interfaces.entries()) {
    const mac = child(iface, 'mac');
    if (mac === undefined) continue;
    const field = `libvirt.interface${index}.mac`;
    const address = attribute(mac, 'address');
    if (address === undefined) {
      problems.push({ field, message: 'the <mac> element has no address' });
      continue;
    }
    const value = decoded(field, address.raw);
    if (value !== null)
      spans.push({
        field,
        value: { value, raw: address.raw, style: address.quote },
        start: address.start,
        end: address.end,
        encode: sameStyleOr(address.quote, encodeAttribute(address.quote)),
      });
  }
  const references = libvirtReferences(text, domain);
  return {
    ok: true,
    spans: [...spans, ...references.spans],
    problems: [...problems, ...references.problems],
    devices: references.devices,
  };
}
