/**
 * cloud-init network-config, version 1 (`config:` list) and version 2
 * (netplan `ethernets:`/`bonds:`/`bridges:`/`vlans:`/`wifis:`), with or
 * without a top-level `network:`. Its identity is the VM's own addresses,
 * gateways, DNS, MACs and interface names: every one-line scalar under a key
 * of IDENTITY_KEYS (a VLAN's tag, and the interfaces a VLAN, bond or bridge
 * names, included), and (v2) each interface's id (the map key). Paths are
 * `netcfg.` + the YAML path, list items and interfaces numbered from 0 in
 * document order so that the two sides pair even when their interface ids
 * differ: `netcfg.ethernets.0.id`, `netcfg.ethernets.0.addresses.0`,
 * `netcfg.ethernets.0.match.macaddress`, `netcfg.config.0.subnets.0.gateway`.
 * A list of scalars under such a key, block (`- a`, indented or at the key's
 * own indentation) or flow (`[a, b]`, on one line or more), gives one field per item and a list span over the whole node
 * (`netcfg.ethernets.0.addresses`), so that a list whose length differs on
 * the two sides is written back whole, in the synced file's style.
 * A flow mapping (`match: {macaddress: …}`, a whole interface `{…}`), on one
 * line or over several, is read as its block form (yaml-flow.ts), so its
 * values have the same paths. A line scanner (no YAML round-trip): block
 * scalars, anchors and scalars going on past their line are warnings, never
 * written.
 */

import { decodeScalar, encodeScalar, scalarToken } from './cloud-init';
import { BadEscape } from './code-point';
import type { FieldValue } from './fields';
import type { ParsedConfig, ValueSpan } from './spans';
import { type FlowNode, parseFlow } from './yaml-flow';

/** A v2 VLAN's `id:` (its tag), renamed in its path: `vlans.0.id` is the VLAN interface's own id (its map key). */
const VLAN_TAG = 'tag';
const IDENTITY_KEYS = new Set([
  'addresses',
  'address',
  'gateway',
  'gateway4',
  'gateway6',
  'via',
  'macaddress',
  'mac_address',
  'set-name',
  'name',
  // DNS: v1 subnets' keys, v1 `type: nameserver` entries' and v2 `nameservers:` `search` (their servers are `address`/`addresses`).
  'dns_nameservers',
  'dns_search',
  'search',
  // A VLAN's tag and the interfaces one interface names (its VLAN's link, a bond's or bridge's members):
  // staging's own, so its guest is on its VLAN and every name points at one of its (restored) interface ids.
  VLAN_TAG,
  'link',
  'interfaces',
  'vlan_id',
  'vlan_link',
  'bond_interfaces',
  'bridge_interfaces',
]);
const INTERFACE_GROUPS = new Set(['ethernets', 'bonds', 'bridges', 'vlans', 'wifis']);

/** A key's path segment: a v2 VLAN's `id:` is its tag (`vlans.0.tag`), apart from the interface's id. */
const keySegment = (segments: string[], name: string): string =>
  name === 'id' && segments.length === 2 && segments[0] === 'vlans' && /^\d+$/.test(segments[1]!)
    ? VLAN_TAG
    : name;

export function looksLikeNetworkConfig(text: string): boolean {
  return (
    /^\uFEFF?(network:|version:[ \t]*[12]\b)/m.test(text) &&
    /^[ \t]*(ethernets|bonds|bridges|vlans|wifis|config):/m.test(text)
  );
}

/** A list of scalars under an identity key: where its node is, and how its lines are laid out. */
interface ListNode {
  field: string;
  flow: boolean;
  start: number;
  end: number;
  items: ValueSpan[];
  /** Block: the text before each `-` on its line, and the line ending. */
  indent: string;
  eol: string;
  /** An item that is not a one-line scalar: the list is not written whole. */
  broken: boolean;
}

interface Level {
  indent: number;
  segment: string;
  /** Children seen so far that are list items (`- …`) or, in an interface group, interfaces. */
  items: number;
  group: boolean;
  /** A key with nothing after its colon: its value is on the lines below. */
  open?: boolean;
  list?: ListNode;
}

const LINE = /^([ \t]*)(.*?)\r?$/gm;
const KEY = /^([A-Za-z0-9_.-]+|"[^"]*"|'[^']*')[ \t]*:(?=[ \t]|$)(.*)$/;
const DASH = /^-(?:[ \t]|$)/;
/** An item as it can stand in a flow list: a plain one holding a flow indicator is double-quoted. */
const flowToken = (v: FieldValue): string =>
  v.style === 'plain' && /[,[\]{}]/.test(v.raw) ? JSON.stringify(v.value) : v.raw;

/** The list's value: its items in a flow list of their values, with each item to write it anew. */
function listValue(text: string, list: ListNode): FieldValue {
  const items = list.items.map((s) => s.value);
  return {
    value: `[${items.map((i) => i.value).join(', ')}]`,
    raw: text.slice(list.start, list.end),
    style: list.flow ? 'flow' : `block:${list.indent}${list.eol}`,
    items,
  };
}

/** The target's list in the synced node's place: its own text in the same style, else each item anew. */
function listEncoder(list: ListNode, style: string): (v: FieldValue) => string {
  return (v) => {
    const items = v.items ?? [];
    if (v.style === style) return v.raw;
    if (list.flow || items.length === 0) return `[${items.map(flowToken).join(', ')}]`;
    return items.map((i) => `- ${i.raw}`).join(list.eol + list.indent);
  };
}

export function parseNetworkConfig(text: string): ParsedConfig {
  const spans: ValueSpan[] = [];
  const lists: ListNode[] = [];
  const problems: Array<{ field: string; message: string }> = [];
  const stack: Level[] = [];
  const path = () => stack.map((l) => l.segment).filter((s, i) => !(i === 0 && s === 'network'));
  const identityKey = (segments: string[]) => {
    const named = [...segments].reverse().find((s) => !/^\d+$/.test(s));
    return named !== undefined && IDENTITY_KEYS.has(named);
  };
  const addScalar = (field: string, token: string, start: number, flow: boolean): ValueSpan | null => {
    try {
      const value = decodeScalar(token);
      const encode = flow ? flowToken : encodeScalar;
      const span: ValueSpan = { field, value, start, end: start + token.length, encode };
      spans.push(span);
      return span;
    } catch (err) {
      if (!(err instanceof BadEscape)) throw err;
      problems.push({ field, message: err.message });
      return null;
    }
  };
  /** A v2 interface: numbered, and its id (the map key) is a value of its own. */
  const addInterfaceId = (segments: string[], raw: string, name: string, start: number) => {
    const value: FieldValue = { value: name, raw, style: 'key' };
    spans.push({
      field: `netcfg.${[...segments, 'id'].join('.')}`,
      value,
      start,
      end: start + raw.length,
      encode: encodeScalar,
    });
  };
  /** A flow node's scalars, at the paths of the block form's (`match: {macaddress: …}` is `match.macaddress`). */
  const addFlow = (segments: string[], node: FlowNode, group: boolean): void => {
    const field = `netcfg.${segments.join('.')}`;
    if (node.kind === 'scalar') {
      if (identityKey(segments)) addScalar(field, node.token, node.start, true);
    } else if (node.kind === 'map') {
      node.entries.forEach((entry, i) => {
        const segment = group ? String(i) : keySegment(segments, entry.name);
        if (group) addInterfaceId([...segments, segment], entry.raw, entry.name, entry.start);
        if (entry.value)
          addFlow([...segments, segment], entry.value, INTERFACE_GROUPS.has(entry.name) && !group);
      });
    } else if (identityKey(segments) && node.items.every((item) => item.kind === 'scalar')) {
      // A list of scalars under an identity key: one field per item, and the list's node written whole.
      const list: ListNode = {
        field,
        flow: true,
        start: node.start,
        end: node.end,
        items: [],
        indent: '',
        eol: '',
        broken: false,
      };
      node.items.forEach((item, i) => {
        const span = item.kind === 'scalar' ? addScalar(`${field}.${i}`, item.token, item.start, true) : null;
        if (span) list.items.push(span);
        else list.broken = true;
      });
      lists.push(list);
    } else {
      node.items.forEach((item, i) => {
        addFlow([...segments, String(i)], item, false);
      });
    }
  };
  /** A key's or list item's value: a flow node (`{…}`, `[…]`, on its line or over more), or a scalar under an identity key. */
  const addValue = (segments: string[], rest: string, restAt: number, group: boolean): ValueSpan | null => {
    const field = `netcfg.${segments.join('.')}`;
    if (/^[ \t]*[[{]/.test(rest)) {
      const flow = parseFlow(text, restAt);
      if (flow) {
        addFlow(segments, flow.node, group);
        flowEnd = flow.end; // the lines it goes on over are the node's
      } else
        problems.push({ field, message: `${segments.join('.')} is not a flow mapping or list it can read` });
      return null;
    }
    if (!identityKey(segments)) return null;
    const scalar = scalarToken(rest);
    if (scalar) return addScalar(field, scalar.token, restAt + scalar.lead, false);
    problems.push({ field, message: `${segments[segments.length - 1]} is not a one-line scalar` });
    return null;
  };

  /** Where the last flow node read ends: the lines up to there are its. */
  let flowEnd = -1;
  for (const line of text.matchAll(LINE)) {
    if (line[0] === '' && line.index === text.length) break;
    if (line.index! < flowEnd) continue;
    let column = line[1]!.replace(/^\uFEFF/, '').length;
    let body = line[2]!;
    let at = line.index! + line[1]!.length;
    if (body === '' || body.startsWith('#') || body === '---' || body === '...') continue;
    // A block list may be written at its key's own indentation (`addresses:` then `- a`): YAML's
    // indentless sequence, whose items still belong to that key.
    const dashLine = DASH.test(body);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      if (top.indent < column || (top.indent === column && dashLine && top.open)) break;
      stack.pop();
    }
    // An item of a list under an identity key: a one-line scalar, or the list is not one of scalars.
    const list = DASH.test(body) ? stack[stack.length - 1]?.list : undefined;
    const dashAt = at;
    let item: ValueSpan | null = null;
    let depth = 0;
    // `- ` items: a list entry of the enclosing key, possibly holding a `key: value` on the same line.
    while (DASH.test(body)) {
      depth++;
      const parent = stack[stack.length - 1];
      const index = parent ? parent.items++ : 0;
      const rest = body.slice(1);
      const gap = rest.length - rest.trimStart().length;
      stack.push({ indent: column, segment: String(index), items: 0, group: false });
      column += 1 + gap;
      at += 1 + gap;
      body = rest.trimStart();
      if (body === '' || body.startsWith('#')) break;
      if (!KEY.test(body)) {
        const segments = path();
        item = addValue(segments, ` ${body}`, at - 1, false);
        stack.pop();
        body = '';
        break;
      }
    }
    if (list) {
      if (item && depth === 1) {
        if (list.items.length === 0) {
          list.start = dashAt;
          list.indent = line[1]!;
          list.eol = line[0].endsWith('\r') ? '\r\n' : '\n';
        }
        list.items.push(item);
        list.end = item.end;
      } else list.broken = true;
    }
    if (body === '' || body.startsWith('#')) continue;
    const key = KEY.exec(body);
    if (!key) continue;
    const parent = stack[stack.length - 1];
    const name = key[1]!.replace(/^["']|["']$/g, '');
    let segment = keySegment(path(), name);
    if (parent?.group) {
      segment = String(parent.items++);
      addInterfaceId([...path(), segment], key[1]!, name, at);
    }
    const rest = key[2]!;
    const restAt = at + body.length - rest.length;
    const level: Level = {
      indent: column,
      segment,
      items: 0,
      group: INTERFACE_GROUPS.has(name) && !parent?.group,
      open: true,
    };
    const segments = [...path(), segment];
    if (rest.trim() === '' || rest.trimStart().startsWith('#')) {
      if (identityKey(segments)) {
        level.list = {
          field: `netcfg.${segments.join('.')}`,
          flow: false,
          start: -1,
          end: -1,
          items: [],
          indent: '',
          eol: '\n',
          broken: false,
        };
        lists.push(level.list);
      }
      stack.push(level);
      continue;
    }
    addValue(segments, rest, restAt, level.group);
  }
  for (const list of lists) {
    // A block key with no item is no list (YAML null); one with an item not a scalar is not written whole.
    if (list.broken || (!list.flow && list.items.length === 0)) continue;
    const style = listValue(text, list).style;
    spans.push({
      field: list.field,
      value: listValue(text, list),
      start: list.start,
      end: list.end,
      encode: listEncoder(list, style),
      list: true,
    });
  }
  return { ok: true, spans, problems };
}
