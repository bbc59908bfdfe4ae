/**
 * A PCI address in libvirt XML (`<address type='pci' domain='0x0000' bus='0x3b' slot='0x02'
 * function='0x1'/>`) as one name, `0000:3b:02.1` (as lspci and sysfs write it), so that an SR-IOV
 * VF only production's NIC uses can be refused, or mapped with `--map 0000:3b:02.1=0000:5e:10.1`.
 */
import type { XmlElement } from './xml-elements';

const PCI = /^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/i;
const FIELDS = ['domain', 'bus', 'slot', 'function'] as const;
const WIDTHS = [4, 2, 2, 1];

/** `dddd:bb:ss.f`, or null when the element is not a complete PCI address. */
export function pciName(address: XmlElement, decode: (raw: string) => string): string | null {
  const type = address.attributes.find((a) => a.name === 'type');
  if (type && decode(type.raw) !== 'pci') return null;
  const parts: string[] = [];
  for (const [i, name] of FIELDS.entries()) {
    const a = address.attributes.find((x) => x.name === name);
    const n = a === undefined ? Number.NaN : Number(decode(a.raw));
    if (!Number.isInteger(n) || n < 0) return null;
    parts.push(n.toString(16).padStart(WIDTHS[i]!, '0'));
  }
  return `${parts[0]}:${parts[1]}:${parts[2]}.${parts[3]}`;
}

export const isPciName = (value: string): boolean => PCI.test(value);

/**
 * The `<address>` element for a `dddd:bb:ss.f` name, in the given quote. `typed`: whether the source's
 * element had `type='pci'`: an interface's <source> needs it, libvirt's schema refuses it in a <hostdev>'s.
 */
export function pciElement(name: string, quote: string, typed: boolean): string {
  const m = PCI.exec(name)!;
  const attrs = FIELDS.map((f, i) => `${f}=${quote}0x${m[i + 1]!.toLowerCase()}${quote}`);
  return `<address ${typed ? `type=${quote}pci${quote} ` : ''}${attrs.join(' ')}/>`;
}
