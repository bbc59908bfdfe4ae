/**
 * A NoCloud meta-data's `network-interfaces: |` block: Debian ENI text
 * (/etc/network/interfaces) that cloud-init renders as the VM's network. Its
 * identity is each `iface` stanza's addresses, gateway, MAC and DNS: the
 * value of each option line in ENI_OPTIONS, as
 * `cloudinit.network-interfaces.<n>.<option>`, stanzas numbered from 0 in
 * document order (so that they pair even when interface names differ). The
 * value is the rest of the line (`dns-nameservers 10.0.0.2 10.0.0.3` is one
 * value), except `hwaddress [ether] MAC`, whose value is the MAC.
 * Only a literal block (`|`, `|-`, `|+`, `|2`) is read: a folded or quoted
 * one would need YAML's line folding and escapes to be rewritten, so it is a
 * problem (a warning), never written.
 */
import type { FieldValue } from './fields';
import type { ValueSpan } from './spans';

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

const KEY_LINE = /^network-interfaces[ \t]*:(.*?)\r?$/m;
const LITERAL = /^[ \t]*\|(?:[1-9][+-]?|[+-][1-9]?)?[ \t]*(?:#.*)?$/;
const FIELD = 'cloudinit.network-interfaces';

/** The ENI values of the top-level `network-interfaces` key, or why they cannot be read. */
export function parseNetworkInterfaces(text: string): {
  spans: ValueSpan[];
  problems: Array<{ field: string; message: string }>;
} {
  const spans: ValueSpan[] = [];
  const key = KEY_LINE.exec(text);
  if (!key) return { spans, problems: [] };
  const header = key[1]!;
  if (!LITERAL.test(header)) {
    return {
      spans,
      problems: [{ field: FIELD, message: 'network-interfaces is not a literal block (`|`) of ENI text' }],
    };
  }
  const explicit = /\|[+-]?([1-9])/.exec(header);
  let indent = explicit ? Number(explicit[1]) : -1;
  let stanzas = 0;
  /** The stanza the option lines belong to, or -1 outside one. */
  let stanza = -1;
  const LINE = /^(.*?)\r?$/gm;
  LINE.lastIndex = key.index + key[0].length + 1;
  for (let line = LINE.exec(text); line && line.index < text.length; line = LINE.exec(text)) {
    const body = line[1]!;
    if (LINE.lastIndex === line.index) LINE.lastIndex++; // an empty line: step over its newline
    if (body.trim() === '') continue;
    const lead = body.length - body.replace(/^ +/, '').length;
    if (indent < 0) indent = lead;
    if (indent === 0 || lead < indent) break; // the block ends at the first line left of it
    const words = [...body.matchAll(/\S+/g)];
    const first = words[0]![0];
    if (first.startsWith('#')) continue;
    if (first === 'iface') {
      stanza = stanzas++;
      continue;
    }
    if (STANZA_END.test(first)) {
      stanza = -1; // options outside a stanza are not an interface's
      continue;
    }
    if (stanza < 0 || !ENI_OPTIONS.has(first) || words.length < 2) continue;
    // `hwaddress ether 52:54:…` (the class is optional): the MAC alone is the value.
    const valueWord = first === 'hwaddress' && words.length > 2 ? words[2]! : words[1]!;
    const start = line.index + valueWord.index!;
    const end = first === 'hwaddress' ? start + valueWord[0].length : line.index + body.trimEnd().length;
    const raw = text.slice(start, end);
    const value: FieldValue = { value: raw, raw, style: 'eni' };
    spans.push({ field: `${FIELD}.${stanza}.${first}`, value, start, end, encode: (v) => v.raw });
  }
  return { spans, problems: [] };
}
