/**
 * References in a libvirt domain: what each device points at. Per device
 * (`libvirt.disk.<target dev>`, `libvirt.interfaceN`, `libvirt.filesystemN`,
 * `libvirt.serialN`, `libvirt.parallelN`, `libvirt.consoleN`, `libvirt.channelN`,
 * `libvirt.graphicsN`, and `libvirt.os`):
 * - `.type`: the device's `type` attribute (file, block, network, volume, bridge…),
 *   which says what kind of <source> follows;
 * - `.source`: the whole <source> element (file|dev|dir|name|volume+pool|protocol+<host>,
 *   network|bridge|dev|portgroup, path, socket…);
 * - disks also `.driver` (the image's format) and `.backingStore`; interfaces `.target` (the tap device);
 * - graphics: `.port`, `.tlsPort`, `.websocket`, `.autoport` (fixed ports);
 * - `libvirt.os.nvram` and `libvirt.os.loader` (the loader names something only when it is writable, i.e. per VM).
 * Each span is the whole attribute (with the space before it) or the whole
 * element (with its line), so the target's text is written back verbatim, and
 * a reference the target's device does not have is removed.
 */

import type { FieldValue } from './fields';
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
const GRAPHICS_PORTS = ['port', 'tlsPort', 'websocket', 'autoport'];

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

function attributeName(a: XmlAttribute, value: string): Name {
  return { start: a.start, end: a.end, value, encode: (v) => encodeAttributeValue(a.quote, v) };
}

/** `name=value` pairs of an element and those under it (`host.name=…`), for the report. */
function describe(e: XmlElement): string {
  const parts: string[] = [];
  for (const d of descendants(e)) {
    const prefix = d === e ? '' : `${d.name}.`;
    for (const a of d.attributes) parts.push(`${prefix}${a.name}=${decoded(a.raw)}`);
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

  const elementRef = (field: string, device: string, e: XmlElement, naming: (d: XmlElement) => boolean) => {
    const names: Name[] = [];
    for (const d of descendants(e)) {
      if (!naming(d)) continue;
      for (const a of d.attributes) {
        if (!NAMING.has(a.name)) continue;
        names.push(attributeName(a, decoded(a.raw)));
      }
    }
    const { start, end } = elementLines(text, e);
    if (seen.has(field)) return;
    seen.add(field);
    out.spans.push(referenceSpan(text, field, device, start, end, names, describe(e) || `<${e.name}>`, true));
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
  for (const e of devicesElement?.children ?? []) {
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
      for (const port of GRAPHICS_PORTS) attributeRef(`${device}.${port}`, device, attribute(e, port), false);
      continue;
    }
    attributeRef(`${device}.type`, device, attribute(e, 'type'), false);
    const source = child(e, 'source');
    if (source) elementRef(`${device}.source`, device, source, () => true);
    if (e.name === 'disk') {
      const driver = child(e, 'driver');
      if (driver) elementRef(`${device}.driver`, device, driver, () => false);
      const backing = child(e, 'backingStore');
      if (backing) elementRef(`${device}.backingStore`, device, backing, (d) => d.name === 'source');
    }
    if (e.name === 'interface') {
      const tap = child(e, 'target');
      if (tap) elementRef(`${device}.target`, device, tap, () => true);
    }
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
  return out;
}
