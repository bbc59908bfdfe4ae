/**
 * cloud-init network-config, version 1 (`config:` list) and version 2
 * (netplan `ethernets:`/`bonds:`/`bridges:`/`vlans:`/`wifis:`), with or
 * without a top-level `network:`. Its identity is the VM's own addresses,
 * gateways, MACs and interface names: every one-line scalar under a key
 * `addresses` (list items, or a one-line flow list `[…]` as one value),
 * `address`, `gateway`, `gateway4`, `gateway6`, `via`, `macaddress`,
 * `mac_address`, `set-name` or `name`, and (v2) each interface's id (the map
 * key). Paths are `netcfg.` + the YAML path, list items and interfaces
 * numbered from 0 in document order so that the two sides pair even when
 * their interface ids differ: `netcfg.ethernets.0.id`,
 * `netcfg.ethernets.0.addresses.0`, `netcfg.ethernets.0.match.macaddress`,
 * `netcfg.config.0.subnets.0.gateway`.
 * A line scanner (no YAML round-trip): block scalars, anchors and multi-line
 * flow values under those keys are warnings, never written.
 */

import { decodeScalar, encodeScalar, scalarToken } from './cloud-init';
import { BadEscape } from './code-point';
import type { FieldValue } from './fields';
import type { ParsedConfig, ValueSpan } from './spans';

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
]);
const INTERFACE_GROUPS = new Set(['ethernets', 'bonds', 'bridges', 'vlans', 'wifis']);

export function looksLikeNetworkConfig(text: string): boolean {
  return (
    /^\uFEFF?(network:|version:[ \t]*[12]\b)/m.test(text) &&
    /^[ \t]*(ethernets|bonds|bridges|vlans|wifis|config):/m.test(text)
  );
}

interface Level {
  indent: number;
  segment: string;
  /** Children seen so far that are list items (`- …`) or, in an interface group, interfaces. */
  items: number;
  group: boolean;
}

const LINE = /^([ \t]*)(.*?)\r?$/gm;
const KEY = /^([A-Za-z0-9_.-]+|"[^"]*"|'[^']*')[ \t]*:(?=[ \t]|$)(.*)$/;

export function parseNetworkConfig(text: string): ParsedConfig {
  const spans: ValueSpan[] = [];
  const problems: Array<{ field: string; message: string }> = [];
  const stack: Level[] = [];
  const path = () => stack.map((l) => l.segment).filter((s, i) => !(i === 0 && s === 'network'));
  const identityKey = (segments: string[]) => {
    const named = [...segments].reverse().find((s) => !/^\d+$/.test(s));
    return named !== undefined && IDENTITY_KEYS.has(named);
  };
  const addValue = (segments: string[], rest: string, restAt: number) => {
    const field = `netcfg.${segments.join('.')}`;
    const trimmed = rest.trimStart();
    const lead = rest.length - trimmed.length;
    // A one-line flow list (`[10.0.0.5/24, "fd00::5/64"]`) is one value.
    const flow = /^(\[[^\]#]*\])[ \t]*(?:#.*)?$/.exec(trimmed);
    if (flow) {
      const raw = flow[1]!;
      const value: FieldValue = { value: raw, raw, style: 'flow' };
      spans.push({
        field,
        value,
        start: restAt + lead,
        end: restAt + lead + raw.length,
        encode: encodeScalar,
      });
      return;
    }
    const scalar = scalarToken(rest);
    if (!scalar) {
      problems.push({ field, message: `${segments[segments.length - 1]} is not a one-line scalar` });
      return;
    }
    try {
      const value = decodeScalar(scalar.token);
      const start = restAt + scalar.lead;
      spans.push({ field, value, start, end: start + scalar.token.length, encode: encodeScalar });
    } catch (err) {
      if (!(err instanceof BadEscape)) throw err;
      problems.push({ field, message: err.message });
    }
  };

  for (const line of text.matchAll(LINE)) {
    if (line[0] === '' && line.index === text.length) break;
    let column = line[1]!.replace(/^\uFEFF/, '').length;
    let body = line[2]!;
    let at = line.index! + line[1]!.length;
    if (body === '' || body.startsWith('#') || body === '---' || body === '...') continue;
    while (stack.length > 0 && stack[stack.length - 1]!.indent >= column) stack.pop();
    // `- ` items: a list entry of the enclosing key, possibly holding a `key: value` on the same line.
    while (/^-(?:[ \t]|$)/.test(body)) {
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
        if (identityKey(segments)) addValue(segments, ` ${body}`, at - 1);
        stack.pop();
        body = '';
        break;
      }
    }
    if (body === '' || body.startsWith('#')) continue;
    const key = KEY.exec(body);
    if (!key) continue;
    const parent = stack[stack.length - 1];
    const name = key[1]!.replace(/^["']|["']$/g, '');
    let segment = name;
    if (parent?.group) {
      // An interface: numbered, and its id is a value of its own.
      segment = String(parent.items++);
      const idField = [...path(), segment, 'id'];
      const value: FieldValue = { value: name, raw: key[1]!, style: 'key' };
      spans.push({
        field: `netcfg.${idField.join('.')}`,
        value,
        start: at,
        end: at + key[1]!.length,
        encode: encodeScalar,
      });
    }
    const rest = key[2]!;
    const restAt = at + body.length - rest.length;
    const level: Level = {
      indent: column,
      segment,
      items: 0,
      group: INTERFACE_GROUPS.has(name) && !parent?.group,
    };
    if (rest.trim() === '' || rest.trimStart().startsWith('#')) {
      stack.push(level);
      continue;
    }
    const segments = [...path(), segment];
    if (identityKey(segments)) addValue(segments, rest, restAt);
  }
  return { ok: true, spans, problems };
}
