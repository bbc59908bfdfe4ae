/**
 * A NoCloud meta-data's `network-interfaces` value: Debian ENI text
 * (/etc/network/interfaces) that cloud-init renders as the VM's network. Its
 * identity is each `iface` stanza's addresses, gateway, MAC and DNS: the
 * value of each option line in ENI_OPTIONS, as
 * `cloudinit.network-interfaces.<n>.<option>` (an `inet6` stanza:
 * `cloudinit.network-interfaces.inet6.<n>.<option>`), stanzas numbered from 0
 * in document order within their address family (so that they pair even when
 * interface names differ, and an IPv4 address never lands in an inet6
 * stanza). The value is the rest of the line (`dns-nameservers 10.0.0.2
 * 10.0.0.3` is one value), except `hwaddress [ether] MAC`, whose value is the
 * MAC. A VLAN interface's tag (`eth0.100`, `vlan100`) is the stanza's `vlan`
 * field, written in every `auto`/`allow-*`/`iface` line naming it: staging
 * keeps its own VLAN, and one only production has is warned about.
 * The text is the YAML scalar as cloud-init reads it, in any style (a literal
 * or folded block, quoted with escapes, plain: yaml-scalar.ts); each value is
 * written back in place in that style. A value that is no scalar is a problem
 * that refuses a sync of it: production's network would otherwise stay.
 */
import type { FieldValue } from './fields';
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
]);
/** Lines that end a stanza: its options come right after its `iface` line. */
const STANZA_END = /^(?:auto|allow-[\w-]+|mapping|source|source-directory|rename)$/;

const KEY_LINE = /^network-interfaces[ \t]*:/m;
const FIELD = 'cloudinit.network-interfaces';
/** The VLAN tag in an interface name: `eth0.100` (raw device and tag) or `vlan100`. */
const VLAN_NAME = /^(?:.+\.|vlan)(\d+)$/;

/** An interface name written on a line (`auto eth0.100`, `iface eth0.100 …`): where it is. */
interface NameWord {
  name: string;
  start: number;
}

/** The field prefix of the next stanza of a family: each family is numbered on its own. */
function stanzaPrefix(family: string | undefined, counts: Map<string, number>): string {
  const key = family === 'inet6' ? 'inet6' : 'inet';
  const n = counts.get(key) ?? 0;
  counts.set(key, n + 1);
  return key === 'inet6' ? `${FIELD}.inet6.${n}` : `${FIELD}.${n}`;
}

/** The `vlan` field of each VLAN stanza: the tag's digits in every line that names the interface. */
function vlanValues(stanzas: NameWord[], prefixes: string[], names: NameWord[]): EniValue[] {
  return stanzas.flatMap((stanza, i) => {
    const tag = VLAN_NAME.exec(stanza.name)?.[1];
    if (tag === undefined) return [];
    const offset = stanza.name.length - tag.length;
    return names
      .filter((word) => word.name === stanza.name)
      .map((word) => ({
        field: `${prefixes[i]}.vlan`,
        start: word.start + offset,
        end: word.start + stanza.name.length,
      }));
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
} {
  const key = KEY_LINE.exec(text);
  if (!key) return { spans: [], problems: [] };
  let scalar: DecodedScalar;
  try {
    scalar = readKeyValue(text, key.index + key[0].length);
  } catch (err) {
    if (!(err instanceof NotAScalar)) throw err;
    const message = `network-interfaces cannot be read as ENI text: ${err.message}`;
    return { spans: [], problems: [{ field: FIELD, message, refusesSync: true }] };
  }
  // Each value is the file text it was decoded from, written back in the scalar's own style.
  const writer = scalarWriter(scalar.style);
  const style = scalar.style === 'literal' ? 'eni' : `eni-${scalar.style}`;
  // The target's own text, where it was written in this style on one line.
  const sameText = (v: FieldValue) => v.style === style && !/[\r\n]/.test(v.raw);
  const spans = eniValues(scalar.text).map(({ field, start, end }): ValueSpan => {
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
  return { spans, problems: [] };
}

/** The identity values in ENI text (`eni`: the decoded value of the key). */
function eniValues(eni: string): EniValue[] {
  const values: EniValue[] = [];
  const counts = new Map<string, number>();
  const stanzas: NameWord[] = [];
  const prefixes: string[] = [];
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
      stanza = stanzaPrefix(words[2]?.[0], counts);
      const name = words[1];
      if (name) {
        stanzas.push({ name: name[0], start: line.index + name.index! });
        prefixes.push(stanza);
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
  values.push(...vlanValues(stanzas, prefixes, names));
  return values;
}
