/**
 * cloud-init NoCloud meta-data and user-data (YAML): the top-level `instance-id`,
 * `local-hostname`, `hostname` and `fqdn` (at column 0), each a one-line scalar: plain, 'single' or
 * "double" quoted, optionally followed by a # comment. The span covers the
 * whole scalar with its quotes. A `network-interfaces: |` block's ENI values: eni.ts.
 */
import { BadEscape, fromCodePoint } from './code-point';
import { parseNetworkInterfaces } from './eni';
import type { FieldValue } from './fields';
import type { ParsedConfig, ValueSpan } from './spans';

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

/**
 * A scalar token stands alone on its line, so the target's own token (its
 * quotes and escapes included) is valid wherever the source had one: it is
 * written back as the target had it, e.g. "007" stays a quoted string.
 */
export const encodeScalar = (v: FieldValue): string => v.raw;

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

export function parseCloudInit(text: string): ParsedConfig {
  const spans: ValueSpan[] = [];
  const problems: Array<{ field: string; message: string }> = [];
  for (const m of text.matchAll(LINE)) {
    const field = `cloudinit.${m[1]}`;
    const rest = m[2]!;
    const scalar = scalarToken(rest);
    if (!scalar) {
      problems.push({ field, message: `${m[1]} is not a one-line scalar` });
      continue;
    }
    const start = m.index! + m[0].indexOf(':') + 1 + scalar.lead;
    let value: FieldValue;
    try {
      value = decodeScalar(scalar.token);
    } catch (err) {
      if (!(err instanceof BadEscape)) throw err;
      problems.push({ field, message: err.message });
      continue;
    }
    spans.push({ field, value, start, end: start + scalar.token.length, encode: encodeScalar });
  }
  const eni = parseNetworkInterfaces(text);
  spans.push(...eni.spans);
  problems.push(...eni.problems);
  // YAML forbids duplicate keys; cloud-init's loader keeps the last one, and so do we (every occurrence is rewritten).
  return { ok: true, spans, problems };
}
