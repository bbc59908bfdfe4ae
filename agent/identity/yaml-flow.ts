/**
 * A YAML flow node (`{macaddress: "52:54:00:…", driver: virtio_net}`, `[10.0.0.2, 10.0.0.3]`,
 * nested), on one line or over several (`{` then one entry a line, comments between them), with
 * each scalar's offset in the file so that it can be rewritten in place. Scalars are plain,
 * 'single' or "double" quoted, each on one line; anything else (a scalar going on past its line,
 * an anchor, a tag, an alias, a `?` key) is not parsed: null.
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

/** White space, line breaks and comments (a `#` after white space) between a flow node's tokens. */
const SPACES = /(?:[ \t\r\n]|(?<=[ \t\r\n])#[^\n]*)*/y;
const KEY = /([A-Za-z0-9_.-]+|"[^"\\\r\n]*"|'[^'\r\n]*')[ \t]*:/y;
const QUOTED = /"(?:[^"\\\r\n]|\\.)*"|'(?:[^'\r\n]|'')*'/y;
const PLAIN = /[^,[\]{}\r\n]*/y;

/**
 * The flow node that the text at offset `at` starts with, and the end of the line it closes on
 * (where only a comment may follow it); else null.
 */
export function parseFlow(text: string, at: number): { node: FlowNode; end: number } | null {
  const rest = text.slice(at);
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
  const lineEnd = rest.indexOf('\n', i) < 0 ? rest.length : rest.indexOf('\n', i);
  return parsed && /^[ \t]*(?:#.*)?\r?$/.test(rest.slice(i, lineEnd))
    ? { node: parsed, end: at + lineEnd }
    : null;
}
