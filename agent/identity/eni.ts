/**
 * A NoCloud meta-data's `network-interfaces` value: Debian ENI text
 * (/etc/network/interfaces) that cloud-init renders as the VM's network. Its
 * identity is each `iface` stanza's addresses, gateway, MAC and DNS: the
 * value of each option line in ENI_OPTIONS, as
 * `cloudinit.network-interfaces.<n>.<option>` (an `inet6` stanza:
 * `cloudinit.network-interfaces.inet6.<n>.<option>`), stanzas numbered from 0
 * in document order within their address family (an IPv4 address never lands
 * in an inet6 stanza); the synced side's are renumbered to pair by interface
 * name where both sides name it (pair-by-name.ts). The value is the rest of
 * the line (`dns-nameservers 10.0.0.2 10.0.0.3` is one value), except
 * `hwaddress [ether] MAC`, whose value is the MAC. A VLAN interface's tag
 * (`eth0.100`, `vlan100`) is the stanza's `vlan` field and the raw device in
 * its name (`eth0`) its `vlan-raw-device`, as the option of that name, written
 * in every `auto`/`allow-*`/`iface` line naming it: staging keeps its own VLAN
 * and raw device, and a VLAN only production has is warned about.
 * The text is the YAML scalar as cloud-init reads it, in any style (a literal
 * or folded block, quoted with escapes, plain: yaml-scalar.ts); each value is
 * written back in place in that style. A value that is no scalar is a problem
 * that refuses a sync of it: production's network would otherwise stay.
 */
import type { FieldValue } from './fields';
import type { NamedItem } from './pair-by-name';
import type { ValueSpan } from './spans';
import { type DecodedScalar, NotAScalar, readKeyValue, scalarWriter } from './yaml-scalar';

const ENI_OPTIONS = new Set([
  'address',
  'netmask',
  'broadcast',
  'network',
  'gateway',
  'pointopoint',
  'hwaddress',
  'dns-nameservers',
  'dns-search',
  'dns-domain',
  'vlan-raw-device',
]);
/** Lines that end a stanza: its options come right after its `iface` line. */
const STANZA_END = /^(?:auto|allow-[\w-]+|mapping|source|source-directory|rename)$/;

const KEY_LINE = /^network-interfaces[ \t]*:/m;
const FIELD = 'cloudinit.network-interfaces';
/** The VLAN tag in an interface name: `eth0.100` (raw device and tag) or `vlan100`. */
const VLAN_NAME = /^(?:(.+)\.|vlan)(\d+)$/;

/** An interface name written on a line (`auto eth0.100`, `iface eth0.100 …`): where it is. */
interface NameWord {
  name: string;
  start: number;
}

/** The next stanza of a family (each family is numbered on its own), named `name`. */
function nextStanza(family: string | undefined, name: string, counts: Map<string, number>): NamedItem {
  const group = family === 'inet6' ? `${FIELD}.inet6` : FIELD;
  const index = counts.get(group) ?? 0;
  counts.set(group, index + 1);
  return { group, index, name };
}

/**
 * The `vlan` field of each VLAN stanza (the tag's digits) and its `vlan-raw-device` (`eth0` of
 * `eth0.100`), in every line that names the interface.
 */
function vlanValues(stanzas: NameWord[], items: NamedItem[], names: NameWord[]): EniValue[] {
  return stanzas.flatMap((stanza, i) => {
    const vlan = VLAN_NAME.exec(stanza.name);
    if (!vlan) return [];
    const [tag, raw] = [vlan[2]!, vlan[1]];
    const prefix = `${items[i]!.group}.${items[i]!.index}`;
    return names
      .filter((word) => word.name === stanza.name)
      .flatMap((word) => [
        {
          field: `${prefix}.vlan`,
          start: word.start + stanza.name.length - tag.length,
          end: word.start + stanza.name.length,
        },
        ...(raw
          ? [{ field: `${prefix}.vlan-raw-device`, start: word.start, end: word.start + raw.length }]
          : []),
      ]);
  });
}

/** An ENI value in the decoded text: [start, end) of the ENI text, not of the file. */
interface EniValue {
  field: string;
  start: number;
  end: number;
}

/** The ENI values of the top-level `network-interfaces` key, or why they cannot be read. */
export function parseNetworkInterfaces(text: string): {
  spans: ValueSpan[];
  problems: Array<{ field: string; message: string; refusesSync?: true }>;
  named: NamedItem[];
} {
  const key = KEY_LINE.exec(text);
  if (!key) return { spans: [], problems: [], named: [] };
  let scalar: DecodedScalar;
  try {
    scalar = readKeyValue(text, key.index + key[0].length);
  } catch (err) {
    if (!(err instanceof NotAScalar)) throw err;
    const message = `network-interfaces cannot be read as ENI text: ${err.message}`;
    return { spans: [], problems: [{ field: FIELD, message, refusesSync: true }], named: [] };
  }
  // Each value is the file text it was decoded from, written back in the scalar's own style.
  const writer = scalarWriter(scalar.style);
  const style = scalar.style === 'literal' ? 'eni' : `eni-${scalar.style}`;
  // The target's own text, where it was written in this style on one line.
  const sameText = (v: FieldValue) => v.style === style && !/[\r\n]/.test(v.raw);
  const { values, stanzas } = eniValues(scalar.text);
  const spans = values.map(({ field, start, end }): ValueSpan => {
    const [from, to] = [scalar.from[start]!, scalar.to[end - 1]!];
    return {
      field,
      value: { value: scalar.text.slice(start, end), raw: text.slice(from, to), style },
      start: from,
      end: to,
      encode: (v) => (sameText(v) ? v.raw : writer.encode(v.value)),
      cannotHold: (v) => (sameText(v) ? null : writer.cannotHold(v.value)),
    };
  });
  return { spans, problems: [], named: stanzas };
}

/** The identity values in ENI text (`eni`: the decoded value of the key). */
function eniValues(eni: string): { values: EniValue[]; stanzas: NamedItem[] } {
  const values: EniValue[] = [];
  const counts = new Map<string, number>();
  const stanzas: NameWord[] = [];
  const items: NamedItem[] = [];
  /** Every interface name on an `auto`, `allow-*` or `iface` line. */
  const names: NameWord[] = [];
  /** The field prefix of the stanza the option lines belong to, or null outside one. */
  let stanza: string | null = null;
  for (const line of eni.matchAll(/^(.*?)\r?$/gm)) {
    const body = line[1]!;
    const words = [...body.matchAll(/\S+/g)];
    const first = words[0]?.[0];
    if (first === undefined || first.startsWith('#')) continue;
    if (first === 'iface') {
      const name = words[1];
      const item = nextStanza(words[2]?.[0], name?.[0] ?? '', counts);
      stanza = `${item.group}.${item.index}`;
      if (name) {
        stanzas.push({ name: name[0], start: line.index + name.index! });
        items.push(item);
        names.push(stanzas[stanzas.length - 1]!);
      }
      continue;
    }
    if (STANZA_END.test(first)) {
      stanza = null; // options outside a stanza are not an interface's
      if (first === 'auto' || first.startsWith('allow-'))
        for (const word of words.slice(1)) names.push({ name: word[0], start: line.index + word.index! });
      continue;
    }
    if (stanza === null || !ENI_OPTIONS.has(first) || words.length < 2) continue;
    // `hwaddress ether 52:54:…` (the class is optional): the MAC alone is the value.
    const valueWord = first === 'hwaddress' && words.length > 2 ? words[2]! : words[1]!;
    const start = line.index + valueWord.index!;
    const end = first === 'hwaddress' ? start + valueWord[0].length : line.index + body.trimEnd().length;
    values.push({ field: `${stanza}.${first}`, start, end });
  }
  values.push(...vlanValues(stanzas, items, names));
  return { values, stanzas: items };
}
