/**
 * References in a libvirt domain: what each device points at. Per device
 * (`libvirt.disk.<target dev>`, `libvirt.interfaceN`, `libvirt.filesystemN`,
 * `libvirt.serialN`, `libvirt.parallelN`, `libvirt.consoleN`, `libvirt.channelN`,
 * `libvirt.graphicsN`, and `libvirt.os`):
 * - `.type`: the device's `type` attribute (file, block, network, volume, bridge…),
 *   which says what kind of <source> follows;
 * - `.source`: the whole <source> element (file|dev|dir|name|volume+pool|protocol+<host>,
 *   network|bridge|dev|portgroup, path, socket…);
 * - disks also `.driver` (the image's format) and `.backingStore`; interfaces `.target` (the tap device),
 *   `.vlan` (the whole <vlan>, its tag ids as names) and `.virtualport` (the whole <virtualport>, its
 *   interfaceid/profileid/instanceid as names);
 * - graphics: `.port`, `.tlsPort`, `.websocket`, `.autoport` (fixed ports);
 * - `libvirt.os.nvram` and `libvirt.os.loader` (the loader names something only when it is writable, i.e. per VM);
 * - `libvirt.hostdevN`: each <hostdev> under <devices>, whole (device `libvirt.hostdev`, always present);
 *   a PCI address in a <source> (a hostdev NIC's VF) is one name, `dddd:bb:ss.f` (libvirt-pci.ts);
 * - `libvirt.seclabelN`: each <seclabel> of the domain, whole (device `libvirt.seclabel`, always present).
 * Each span is the whole attribute (with the space before it) or the whole
 * element (with its line), so the target's text is written back verbatim, and
 * a reference the target's device does not have is removed.
 */

import type { FieldValue } from './fields';
import { isPciName, pciElement, pciName } from './libvirt-pci';
import { decodeXml } from './libvirt-xml';
import type { ReferenceInfo, ValueSpan } from './spans';
import {
  attribute,
  child,
  descendants,
  elementLines,
  type XmlAttribute,
  type XmlElement,
} from './xml-elements';

const STYLE = 'libvirt-reference';
const DEVICE_KINDS = [
  'disk',
  'interface',
  'filesystem',
  'serial',
  'parallel',
  'console',
  'channel',
  'graphics',
];
/** Attributes whose values name storage, a network, a socket or a file. */
const NAMING = new Set([
  'file',
  'dev',
  'dir',
  'name',
  'volume',
  'pool',
  'network',
  'bridge',
  'portgroup',
  'path',
  'socket',
]);
const SECLABEL_DEVICE = 'libvirt.seclabel';
const HOSTDEV_DEVICE = 'libvirt.hostdev';
/** Places for the target's host devices in a source's config with fewer (a host has a few dozen at most). */
const MAX_HOSTDEVS = 32;
const MAX_SECLABELS = 4;
const GRAPHICS_PORTS = ['port', 'tlsPort', 'websocket', 'autoport'];
/**
 * A NIC's VLAN tags and its switch port (Open vSwitch's interfaceid, 802.1Qbh's profileid, 802.1Qbg's
 * instanceid): which segment and which port of a shared switch it is. Production's would put staging's
 * NIC on production's VLAN, on production's port.
 */
const VLAN_NAMING = new Set(['id']);
const PORT_NAMING = new Set(['interfaceid', 'profileid', 'instanceid']);

const encodeAttributeValue = (quote: string, value: string) =>
  value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(quote === '"' ? /"/g : /'/g, quote === '"' ? '&quot;' : '&apos;');

/** Line endings inside `raw` become the ones of the file written into. */
const withEol = (raw: string, eol: string) => raw.replace(/\r?\n/g, eol);

interface Name {
  /** The value's span in the text, as written. */
  start: number;
  end: number;
  value: string;
  /** How a new value is written there. */
  encode: (value: string) => string;
  /** Whether a value can be written there at all (a PCI address); any when absent. */
  accepts?: (value: string) => boolean;
}

/**
 * Decoded; a value with an escape that names no character (`&#x110000;`) stays as written: the
 * reference is still kept, mapped or refused like any other (a name nobody maps is refused), so a
 * bad escape can neither fail a sync nor slip a source reference through.
 */
function decoded(raw: string): string {
  try {
    return decodeXml(raw);
  } catch {
    return raw;
  }
}

function referenceSpan(
  text: string,
  field: string,
  device: string,
  start: number,
  end: number,
  names: Name[],
  display: string,
  element: boolean,
): ValueSpan {
  const raw = text.slice(start, end);
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  // An element on lines of its own is written back as the target's element on this file's lines:
  // this file's indentation and line ending around it; one inside a line, as the bare element.
  const ownLines = element && (start === 0 || text[start - 1] === '\n') && raw.endsWith('\n');
  const indent = ownLines ? /^[ \t]*/.exec(raw)![0] : '';
  const encode = (v: FieldValue): string => {
    if (v.raw === '' || !element) return withEol(v.raw, eol);
    const bare = withEol(v.raw.replace(/^[ \t]*/, '').replace(/\r?\n$/, ''), eol);
    return ownLines ? `${indent}${bare}${eol}` : bare;
  };
  const reference: ReferenceInfo = {
    names: names.map((n) => n.value),
    device,
    removable: true,
    accepts: (name, value) => names.find((n) => n.value === name)?.accepts?.(value) ?? true,
    rewrite: (map) => {
      let out = '';
      let at = start;
      for (const n of [...names].sort((a, b) => a.start - b.start)) {
        out += text.slice(at, n.start) + n.encode(map(n.value));
        at = n.end;
      }
      return out + text.slice(at, end);
    },
  };
  const value: FieldValue = { value: display, raw, style: STYLE };
  return { field, value, start, end, encode, reference };
}

/**
 * Where an element the device lacks would go (before the device's end tag), as an empty reference: a
 * target whose own device has it gets it written back here; a source's device that has it, with the
 * target's empty, has it taken out.
 */
function slotSpan(text: string, field: string, device: string, e: XmlElement): ValueSpan {
  const lineStart = text.lastIndexOf('\n', e.contentEnd - 1) + 1;
  const ownLine = /^[ \t]*$/.test(text.slice(lineStart, e.contentEnd));
  const at = ownLine ? lineStart : e.contentEnd;
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const last = e.children[e.children.length - 1];
  const indent = last ? /^[ \t]*/.exec(text.slice(text.lastIndexOf('\n', last.start - 1) + 1))![0] : '';
  const encode = (v: FieldValue): string => {
    const bare = withEol(v.raw.replace(/^[ \t]*/, '').replace(/\r?\n$/, ''), eol);
    return bare === '' || !ownLine ? bare : `${indent}${bare}${eol}`;
  };
  const reference: ReferenceInfo = { names: [], device, removable: true, rewrite: () => '' };
  return { field, value: { value: '', raw: '', style: STYLE }, start: at, end: at, encode, reference };
}

function attributeName(a: XmlAttribute, value: string): Name {
  return { start: a.start, end: a.end, value, encode: (v) => encodeAttributeValue(a.quote, v) };
}

/** The PCI address of a device's <source> (a host device, a hostdev NIC's VF), as one name. */
const sourcePci = (d: XmlElement): string | null =>
  d.name === 'address' && d.parent?.name === 'source' ? pciName(d, decoded) : null;

/** `name=value` pairs of an element and those under it (`host.name=…`), for the report. */
function describe(e: XmlElement): string {
  const parts: string[] = [];
  for (const d of descendants(e)) {
    const prefix = d === e ? '' : `${d.name}.`;
    // A PCI address as the name it is mapped by, so a mapped one shows the target's.
    const pci = sourcePci(d);
    if (pci !== null) parts.push(`${prefix}pci=${pci}`);
    else for (const a of d.attributes) parts.push(`${prefix}${a.name}=${decoded(a.raw)}`);
  }
  return parts.join(' ');
}

export interface LibvirtReferences {
  spans: ValueSpan[];
  devices: string[];
  problems: Array<{ field: string; message: string }>;
}

export function libvirtReferences(text: string, root: XmlElement): LibvirtReferences {
  const out: LibvirtReferences = { spans: [], devices: [], problems: [] };
  const seen = new Set<string>();

  const elementRef = (
    field: string,
    device: string,
    e: XmlElement,
    naming: (d: XmlElement) => boolean,
    attributes = NAMING,
    wholeDevice = false,
  ) => {
    const names: Name[] = [];
    // A host device's PCI address is one name (`0000:3b:02.1`): production's VF is never staging's.
    for (const d of descendants(e)) {
      const pci = sourcePci(d);
      if (pci === null) continue;
      const quote = d.attributes[0]?.quote ?? "'";
      const typed = attribute(d, 'type') !== undefined;
      names.push({
        start: d.start,
        end: d.end,
        value: pci,
        encode: (v) => pciElement(v, quote, typed),
        accepts: isPciName,
      });
    }
    for (const d of descendants(e)) {
      if (!naming(d)) continue;
      for (const a of d.attributes) {
        if (!attributes.has(a.name)) continue;
        names.push(attributeName(a, decoded(a.raw)));
      }
    }
    const { start, end } = elementLines(text, e);
    if (seen.has(field)) return;
    seen.add(field);
    const span = referenceSpan(text, field, device, start, end, names, describe(e) || `<${e.name}>`, true);
    if (wholeDevice) span.reference!.wholeDevice = true;
    out.spans.push(span);
  };
  const attributeRef = (field: string, device: string, a: XmlAttribute | undefined, named: boolean) => {
    if (!a || seen.has(field)) return;
    const value = decoded(a.raw);
    seen.add(field);
    const names = named ? [attributeName(a, value)] : [];
    out.spans.push(referenceSpan(text, field, device, a.whole, a.end + 1, names, value, false));
  };

  const devicesElement = child(root, 'devices');
  const counters = new Map<string, number>();
  const hostdevs: XmlElement[] = [];
  for (const e of devicesElement?.children ?? []) {
    if (e.name === 'hostdev') hostdevs.push(e);
    if (!DEVICE_KINDS.includes(e.name)) continue;
    const n = counters.get(e.name) ?? 0;
    counters.set(e.name, n + 1);
    const targetDev = e.name === 'disk' ? child(e, 'target') : undefined;
    const key =
      targetDev && attribute(targetDev, 'dev') ? `.${decoded(attribute(targetDev, 'dev')!.raw)}` : `${n}`;
    const device = `libvirt.${e.name}${key}`;
    out.devices.push(device);
    if (e.name === 'graphics') {
      // Fixed ports only: with autoport='yes' (or port='-1') libvirt picks them.
      for (const port of GRAPHICS_PORTS) {
        const before = out.spans.length;
        attributeRef(`${device}.${port}`, device, attribute(e, port), false);
        for (const span of out.spans.slice(before)) span.reference!.hostPort = true;
      }
      continue;
    }
    attributeRef(`${device}.type`, device, attribute(e, 'type'), false);
    const source = child(e, 'source');
    if (source) {
      elementRef(`${device}.source`, device, source, () => true);
      // A network disk's <host>: the server exporting the disk named beside it (snapsync's NBD socket).
      const hosts = e.name === 'disk' ? source.children.filter((h) => h.name === 'host') : [];
      const serverNames = hosts.flatMap((h) =>
        h.attributes.filter((a) => NAMING.has(a.name)).map((a) => decoded(a.raw)),
      );
      if (serverNames.length > 0) out.spans[out.spans.length - 1]!.reference!.serverNames = serverNames;
    }
    if (e.name === 'disk') {
      const driver = child(e, 'driver');
      if (driver) elementRef(`${device}.driver`, device, driver, () => false);
      const backing = child(e, 'backingStore');
      if (backing) elementRef(`${device}.backingStore`, device, backing, (d) => d.name === 'source');
    }
    if (e.name === 'interface') {
      const tap = child(e, 'target');
      if (tap) {
        elementRef(`${device}.target`, device, tap, () => true);
        out.spans[out.spans.length - 1]!.reference!.madeAtStart = true;
      }
      // A NIC without them is on the switch's native VLAN, on a port libvirt makes: an empty slot, so
      // that a target's own VLAN and port are written back into the source's NIC that has none.
      const vlan = child(e, 'vlan');
      if (vlan) elementRef(`${device}.vlan`, device, vlan, (d) => d.name === 'tag', VLAN_NAMING);
      else out.spans.push(slotSpan(text, `${device}.vlan`, device, e));
      const port = child(e, 'virtualport');
      if (port)
        elementRef(`${device}.virtualport`, device, port, (d) => d.name === 'parameters', PORT_NAMING);
      else out.spans.push(slotSpan(text, `${device}.virtualport`, device, e));
    }
  }
  // Host devices (PCI, SCSI, USB passthrough) are the host's hardware: the target's own, whole, in
  // order; one only the source has is taken out (the device is always there), with a warning.
  if (devicesElement) {
    out.devices.push(HOSTDEV_DEVICE);
    for (const [n, e] of hostdevs.entries())
      elementRef(`${HOSTDEV_DEVICE}${n}`, HOSTDEV_DEVICE, e, () => false, NAMING, true);
    for (let n = hostdevs.length; n < MAX_HOSTDEVS; n++)
      out.spans.push(slotSpan(text, `${HOSTDEV_DEVICE}${n}`, HOSTDEV_DEVICE, devicesElement));
  }
  const os = child(root, 'os');
  if (os) {
    out.devices.push('libvirt.os');
    for (const name of ['nvram', 'loader']) {
      const e = child(os, name);
      if (!e) continue;
      const field = `libvirt.os.${name}`;
      // A read-only loader is the shared firmware image, not the VM's own: it names nothing to map.
      const perVm = name === 'nvram' || attribute(e, 'readonly')?.raw !== 'yes';
      const content = decoded(text.slice(e.contentStart, e.contentEnd));
      const names: Name[] =
        perVm && content.trim() !== ''
          ? [
              {
                start: e.contentStart,
                end: e.contentEnd,
                value: content,
                encode: (v) => v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;'),
              },
            ]
          : [];
      const { start, end } = elementLines(text, e);
      seen.add(field);
      out.spans.push(
        referenceSpan(text, field, 'libvirt.os', start, end, names, content || `<${name}>`, true),
      );
    }
  }
  // The domain's security labels: libvirt derives a dynamic one from the domain UUID (`libvirt-<uuid>`),
  // a static one names the VM's own SELinux/AppArmor context. The target's are written back whole; one
  // only the source has is taken out (the device is always there), so libvirt labels staging as its own.
  out.devices.push(SECLABEL_DEVICE);
  const seclabels = root.children.filter((c) => c.name === 'seclabel');
  for (const [n, e] of seclabels.entries())
    elementRef(`${SECLABEL_DEVICE}${n}`, SECLABEL_DEVICE, e, () => false);
  // A domain has at most one per security model (selinux, apparmor, dac, none): slots for the target's own.
  for (let n = seclabels.length; n < MAX_SECLABELS; n++)
    out.spans.push(slotSpan(text, `${SECLABEL_DEVICE}${n}`, SECLABEL_DEVICE, root));
  return out;
}
