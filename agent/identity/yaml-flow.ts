/**
 * A YAML flow node written on one line (`{macaddress: "52:54:00:…", driver: virtio_net}`,
 * `[10.0.0.2, 10.0.0.3]`, nested), with each scalar's offset in the file so that it can be
 * rewritten in place. Scalars are plain, 'single' or "double" quoted; anything else (a node
 * that goes on past the line, an anchor, a tag, an alias, a `?` key) is not parsed: null.
 */
import { scalarToken } from './cloud-init';

export type FlowNode =
  | { kind: 'map'; entries: FlowEntry[] }
  | { kind: 'seq'; items: FlowNode[]; start: number; end: number }
  | { kind: 'scalar'; token: string; start: number };

export interface FlowEntry {
  /** The key as written (quotes included), and where it is. */
  raw: string;
  name: string;
  start: number;
  /** Null when the key has no value (`{a: }`: YAML null). */
  value: FlowNode | null;
}

const SPACES = /[ \t]*/y;
const KEY = /([A-Za-z0-9_.-]+|"[^"\\]*"|'[^']*')[ \t]*:/y;
const QUOTED = /"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'/y;
const PLAIN = /[^,[\]{}]*/y;

/** The flow node that `rest` (text at offset `at`) starts with, alone on its line up to a comment; else null. */
export function parseFlowLine(rest: string, at: number): FlowNode | null {
  let i = 0;
  const skip = () => {
    SPACES.lastIndex = i;
    SPACES.exec(rest);
    i = SPACES.lastIndex;
  };
  const take = (re: RegExp): string | null => {
    re.lastIndex = i;
    const m = re.exec(rest);
    if (!m) return null;
    i = re.lastIndex;
    return m[0];
  };
  /** Items or entries up to `close`, separated by commas (a trailing comma allowed, an empty item not). */
  const collection = <T>(close: string, item: () => T | null): T[] | null => {
    i++;
    const items: T[] = [];
    for (;;) {
      skip();
      if (rest[i] === close) {
        i++;
        return items;
      }
      const parsed = item();
      if (parsed === null) return null;
      items.push(parsed);
      skip();
      if (rest[i] === ',') i++;
      else if (rest[i] !== close) return null;
    }
  };
  const scalar = (): FlowNode | null => {
    const start = i;
    const quoted = take(QUOTED);
    const token = quoted ?? take(PLAIN)!.trimEnd();
    i = start + token.length;
    // A plain scalar ends at a flow indicator; one holding `: `, ` #` or starting with an indicator is not one.
    if (token === '' || scalarToken(` ${token}`)?.token !== token) return null;
    return { kind: 'scalar', token, start: at + start };
  };
  const node = (): FlowNode | null => {
    if (rest[i] === '{') {
      const entries = collection('}', (): FlowEntry | null => {
        const start = i;
        const key = take(KEY);
        // A plain key's `:` is followed by a space or the entry's end (`a:b` is one scalar).
        if (key === null || (!/^["']/.test(key) && !/^[ \t,}]?$/.test(rest[i] ?? ''))) return null;
        const raw = key.replace(/[ \t]*:$/, '');
        skip();
        const entry = { raw, name: raw.replace(/^["']|["']$/g, ''), start: at + start, value: null };
        if (rest[i] === ',' || rest[i] === '}') return entry;
        const value = node();
        return value && { ...entry, value };
      });
      return entries && { kind: 'map', entries };
    }
    if (rest[i] === '[') {
      const start = i;
      const items = collection(']', node);
      return items && { kind: 'seq', items, start: at + start, end: at + i };
    }
    return scalar();
  };
  skip();
  const parsed = node();
  skip();
  return parsed && /^(?:#.*)?\r?$/.test(rest.slice(i)) ? parsed : null;
}
