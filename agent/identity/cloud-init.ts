/**
 * cloud-init NoCloud meta-data and user-data (YAML): the top-level `instance-id`,
 * `local-hostname`, `hostname` and `fqdn` (at column 0), each a one-line scalar: plain, 'single' or
 * "double" quoted, optionally followed by a # comment, after a `!!str` tag or an `&anchor` (kept), on the
 * key's line or alone on the next, more-indented one; or a `|`/`>` block scalar holding one line of text;
 * or a plain or quoted scalar going on over more lines, read whole (yaml-scalar.ts).
 * The span covers the whole scalar with its quotes (a block's: its line's text). A
 * `network-interfaces` value's ENI values: eni.ts.
 */
import { BadEscape, fromCodePoint } from './code-point';
import { parseNetworkInterfaces } from './eni';
import type { FieldValue } from './fields';
import type { ParsedConfig, ValueSpan } from './spans';
import { type DecodedScalar, NotAScalar, readKeyValue } from './yaml-scalar';

/** A top-level key's line (the first one may follow a UTF-8 byte-order mark). */
const LINE = /^\uFEFF?(instance-id|local-hostname|hostname|fqdn)[ \t]*:(.*?)\r?$/gm;

export function looksLikeCloudInit(text: string): boolean {
  return /^\uFEFF?(instance-id|local-hostname|hostname|fqdn)[ \t]*:/m.test(text) && !/^\s*</.test(text);
}

const decodeDouble = (body: string): string =>
  body.replace(/\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)/g, (_m, e: string) => {
    if (e.length > 1) return fromCodePoint(Number.parseInt(e.slice(1), 16), `\\${e}`);
    return { n: '\n', t: '\t', r: '\r', '0': '\0', '"': '"', '\\': '\\', '/': '/', ' ': ' ' }[e] ?? e;
  });

export function decodeScalar(token: string): FieldValue {
  if (token.startsWith('"')) return { value: decodeDouble(token.slice(1, -1)), raw: token, style: 'double' };
  if (token.startsWith("'"))
    return { value: token.slice(1, -1).replace(/''/g, "'"), raw: token, style: 'single' };
  return { value: token, raw: token, style: 'plain' };
}

/** The style of a value read from a block scalar's only line: its text is the value, with no quotes or escapes. */
const BLOCK = 'block';

/**
 * A scalar token stands alone on its line, so the target's own token (its
 * quotes and escapes included) is valid wherever the source had one: it is
 * written back as the target had it, e.g. "007" stays a quoted string.
 */
export const encodeScalar = (v: FieldValue): string => (v.style === BLOCK ? asToken(v.value) : v.raw);

/** A block's text as a token: plain when YAML 1.1 reads it back as that string, else double-quoted (JSON's escapes are YAML's). */
const asToken = (value: string): string =>
  /^[A-Za-z_][\w.-]*$/.test(value) && !/^(y|n|yes|no|on|off|true|false|null)$/i.test(value)
    ? value
    : JSON.stringify(value);

/** A value in a block scalar's line: its text as is; one that a line cannot hold is written quoted (then a literal). */
const encodeBlockLine = (v: FieldValue): string => {
  if (v.style === BLOCK) return v.raw;
  return /^[^\s][^\r\n\u0085\u2028\u2029]*$/.test(v.value) ? v.value : asToken(v.value);
};

/** A `!!str` tag and/or an `&anchor` before a value: YAML's node properties, which do not change a string. */
const PROPERTIES = /^(?:[ \t]+(?:!!str|!<tag:yaml\.org,2002:str>|&[^\s,[\]{}]+)(?=[ \t]|$)){1,2}/;
/** A block scalar's header (no explicit indentation), optionally followed by a comment. */
const BLOCK_HEADER = /^[ \t]*[|>][-+]?[ \t]*(?:#.*)?$/;

/** The lines after `at` that belong to a top-level key's value (blank or indented), with their offsets. */
function valueLines(text: string, at: number): Array<{ start: number; line: string }> {
  const lines: Array<{ start: number; line: string }> = [];
  let start = text.indexOf('\n', at) + 1;
  while (start > 0 && start < text.length) {
    const end = text.indexOf('\n', start);
    const line = text.slice(start, end < 0 ? text.length : end).replace(/\r$/, '');
    if (line.trim() !== '' && !/^[ \t]/.test(line)) break;
    lines.push({ start, line });
    start = end + 1;
  }
  while (lines.length > 0 && lines[lines.length - 1]!.line.trim() === '') lines.pop();
  return lines;
}

/**
 * The value on the key's next lines: a block scalar's one line (its text), or a plain or quoted
 * token alone on the next line. Null when it is anything longer (a multi-line value is not an identity).
 */
function nextLineValue(
  text: string,
  at: number,
  block: boolean,
): { start: number; token: string; block: boolean } | null {
  const lines = valueLines(text, at);
  if (lines.length !== 1) return null;
  const { start, line } = lines[0]!;
  // A block's content is indented by spaces only; a tab after them is text.
  const lead = line.length - line.replace(/^ +/, '').length;
  if (block) return { start: start + lead, token: line.slice(lead), block };
  const scalar = scalarToken(line);
  return scalar && { start: start + scalar.lead, token: scalar.token, block };
}

/** The scalar token at the start of `rest` (after spaces), or null when it is not a one-line scalar. */
export function scalarToken(rest: string): { lead: number; token: string } | null {
  const lead = rest.length - rest.trimStart().length;
  const body = rest.slice(lead);
  const quoted = /^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*')[ \t]*(?:#.*)?$/.exec(body);
  if (quoted) return { lead, token: quoted[1]! };
  if (body === '' || /^[{[|>&*!%@`"']|^[-?:](?:[ \t]|$)/.test(body)) return null; // empty, a block, a flow or an indicator
  const comment = /[ \t]#/.exec(body);
  const token = (comment ? body.slice(0, comment.index) : body).trimEnd();
  return /: |:$/.test(token) ? null : { lead, token };
}

/**
 * A plain or quoted scalar that goes on over more than one line (`prod-` then an indented `web` is
 * "prod- web": a line break folds into a space), read whole; null for any other value.
 */
function multiLineScalar(text: string, at: number): { value: FieldValue; start: number; end: number } | null {
  let scalar: DecodedScalar;
  try {
    scalar = readKeyValue(text, at);
  } catch (err) {
    if (err instanceof NotAScalar) return null; // read (or not) as one line
    throw err;
  }
  const raw = text.slice(scalar.start, scalar.end);
  if (!/[\r\n]/.test(raw) || scalar.style === 'literal' || scalar.style === 'folded') return null;
  return { value: { value: scalar.text, raw, style: scalar.style }, start: scalar.start, end: scalar.end };
}

export function parseCloudInit(text: string): ParsedConfig {
  const spans: ValueSpan[] = [];
  const problems: Array<{ field: string; message: string }> = [];
  for (const m of text.matchAll(LINE)) {
    const field = `cloudinit.${m[1]}`;
    const colon = m.index! + m[0].indexOf(':') + 1;
    const properties = PROPERTIES.exec(m[2]!)?.[0] ?? '';
    const rest = m[2]!.slice(properties.length);
    const scalar = scalarToken(rest);
    const block = BLOCK_HEADER.test(rest);
    const multiLine = block ? null : multiLineScalar(text, colon + properties.length);
    if (multiLine) {
      spans.push({ field, ...multiLine, encode: encodeScalar });
      continue;
    }
    const found = scalar
      ? { start: colon + properties.length + scalar.lead, token: scalar.token, block: false }
      : block || /^[ \t]*(?:#.*)?$/.test(rest)
        ? nextLineValue(text, colon, block)
        : null;
    if (!found) {
      problems.push({ field, message: `${m[1]} is not a one-line scalar` });
      continue;
    }
    let value: FieldValue;
    try {
      value = found.block
        ? { value: found.token, raw: found.token, style: BLOCK }
        : decodeScalar(found.token);
    } catch (err) {
      if (!(err instanceof BadEscape)) throw err;
      problems.push({ field, message: err.message });
      continue;
    }
    const encode = found.block ? encodeBlockLine : encodeScalar;
    spans.push({ field, value, start: found.start, end: found.start + found.token.length, encode });
  }
  const eni = parseNetworkInterfaces(text);
  spans.push(...eni.spans);
  problems.push(...eni.problems);
  // YAML forbids duplicate keys; cloud-init's loader keeps the last one, and so do we (every occurrence is rewritten).
  return { ok: true, spans, problems, named: eni.named };
}
