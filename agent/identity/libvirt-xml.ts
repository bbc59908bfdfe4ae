/**
 * libvirt domain XML: the domain's <name> and <uuid> (children of <domain>),
 * the SMBIOS system uuid and serials of <sysinfo type='smbios'>, and the address of each <interface>'s <mac> under <devices>, numbered in
 * document order from 0. The element tree comes from the one XML scanner
 * (xml-elements.ts: comments, CDATA, processing instructions and the doctype
 * skipped), so a <name> inside <metadata> or a commented-out interface is not
 * taken; values are text spans and the rest of the document stays byte for
 * byte as it was (no XML library round-trip).
 */
import { BadEscape, fromCodePoint } from './code-point';
import { libvirtReferences } from './libvirt-references';
import { type ParsedConfig, sameStyleOr, type ValueSpan } from './spans';
import { attribute, child, scanXml, type XmlElement } from './xml-elements';

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

/** SMBIOS entries that identify the machine, per table of <sysinfo type='smbios'>. */
const SMBIOS_FIELDS: Array<[string, string[]]> = [
  ['system', ['uuid', 'serial']],
  ['baseBoard', ['serial']],
  ['chassis', ['serial']],
];

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
  /** An element's text content as the value of `field` (never markup). */
  const textField = (field: string, element: XmlElement | undefined) => {
    if (element === undefined || element.end === element.contentEnd) return; // absent or <x/>
    const raw = text.slice(element.contentStart, element.contentEnd);
    if (raw.includes('<')) {
      problems.push({ field, message: `<${element.name}> holds markup, not text` });
      return;
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
  };
  // The domain's own <name> and <uuid> (the first of each).
  for (const tag of ['name', 'uuid']) textField(`libvirt.${tag}`, child(domain, tag));
  // The SMBIOS tables the guest reads (dmidecode, /sys/class/dmi/id/product_uuid): the system UUID must
  // be the domain's <uuid> (libvirt refuses anything else), and Nova writes the domain UUID as the serial.
  const sysinfo = domain.children.find((c) => c.name === 'sysinfo' && attribute(c, 'type')?.raw === 'smbios');
  for (const [table, names] of SMBIOS_FIELDS) {
    const section = sysinfo && child(sysinfo, table);
    for (const name of names) {
      const entry = section?.children.find((c) => c.name === 'entry' && attribute(c, 'name')?.raw === name);
      textField(`libvirt.sysinfo.${table}.${name}`, entry);
    }
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
