/**
 * The scalar value of a top-level YAML key (one at column 0), in any of YAML's five styles, decoded
 * as PyYAML (cloud-init's loader) reads it: plain or 'single'/"double" quoted over several lines
 * (line folding, escapes), or a literal `|` or folded `>` block (indentation, folding, chomping).
 * Each decoded character keeps the file offsets of the text it came from, so that a part of the
 * value (an address in ENI text: eni.ts) can be rewritten in place.
 */
import { BadEscape, fromCodePoint } from './code-point';

export type ScalarStyle = 'plain' | 'single' | 'double' | 'literal' | 'folded';

export interface DecodedScalar {
  style: ScalarStyle;
  /** The value as a YAML loader reads it. */
  text: string;
  /** For each UTF-16 unit of `text`, the file offsets [from, to) of the text it was decoded from. */
  from: number[];
  to: number[];
  /** The scalar's own text in the file: [start, end), quotes included, a block's header not. */
  start: number;
  end: number;
}

/** Why a value cannot be read as a scalar. */
export class NotAScalar extends Error {}

/** A line of the file: [start, end) without its line break; `next` is where the following line starts. */
interface Line {
  start: number;
  end: number;
  next: number;
}

function lineAt(text: string, start: number): Line {
  const nl = text.indexOf('\n', start);
  const next = nl < 0 ? text.length : nl + 1;
  const end = nl < 0 ? text.length : nl > start && text[nl - 1] === '\r' ? nl - 1 : nl;
  return { start, end, next };
}

const isBlank = (text: string, line: Line) => /^[ \t]*$/.test(text.slice(line.start, line.end));
const leadingSpaces = (text: string, line: Line) =>
  text.slice(line.start, line.end).length - text.slice(line.start, line.end).replace(/^ +/, '').length;

/** Builds the decoded text with its offsets. */
class Output {
  readonly units: string[] = [];
  readonly from: number[] = [];
  readonly to: number[] = [];
  /** Characters decoded from the file text [from, to) as a whole (an escape, a folded line break). */
  push(chars: string, from: number, to: number): void {
    for (let i = 0; i < chars.length; i++) {
      this.units.push(chars[i]!);
      this.from.push(from);
      this.to.push(to);
    }
  }
  /** The file text [from, to) as it is, character by character. */
  copy(text: string, from: number, to: number): void {
    for (let i = from; i < to; i++) this.push(text[i]!, i, i + 1);
  }
  result(style: ScalarStyle, start: number, end: number): DecodedScalar {
    return { style, text: this.units.join(''), from: this.from, to: this.to, start, end };
  }
}

/** YAML's white space is spaces and tabs only (a no-break space is text). */
const WHITE = /[ \t]*/y;
const skipWhite = (text: string, at: number): number => {
  WHITE.lastIndex = at;
  WHITE.exec(text);
  return WHITE.lastIndex;
};
const textStart = (text: string, line: Line) => Math.min(skipWhite(text, line.start), line.end);

const PROPERTY = /(?:!!str|!<tag:yaml\.org,2002:str>|&[^\s,[\]{}]+)(?=[ \t\r\n]|$)/y;
const EMPTY: DecodedScalar = { style: 'plain', text: '', from: [], to: [], start: 0, end: 0 };

/**
 * The value that starts at or after `at` (just after a top-level key's `:`), after a `!!str` tag
 * or an `&anchor`. Throws NotAScalar for a value that is no string (a flow or block collection, an
 * alias, another tag) or is malformed.
 */
export function readKeyValue(text: string, at: number): DecodedScalar {
  let line = lineAt(text, at);
  let pos = Math.min(skipWhite(text, at), line.end);
  // Nothing but a comment after the key: the value is on the next line that holds one (indented);
  // with none, it is empty (YAML's null).
  while (pos >= line.end || text[pos] === '#') {
    if (line.next >= text.length) return EMPTY;
    line = lineAt(text, line.next);
    const body = text.slice(line.start, line.end);
    if (/^[ \t]*(?:#.*)?$/.test(body)) {
      pos = line.end;
      continue;
    }
    if (!/^[ \t]/.test(body)) return EMPTY;
    pos = textStart(text, line);
  }
  // A `!!str` tag or an `&anchor` (YAML's node properties) does not change a string: the value follows.
  PROPERTY.lastIndex = pos;
  if (PROPERTY.test(text)) return readKeyValue(text, PROPERTY.lastIndex);
  const c = text[pos]!;
  if (c === '|' || c === '>') return readBlock(text, pos, line);
  if (c === '"' || c === "'") return readQuoted(text, pos);
  if (/[[\]{},#&*!%@`]/.test(c) || /^[-?:](?:[ \t]|$)/.test(text.slice(pos, pos + 2)))
    throw new NotAScalar('it is not a string (a collection, an alias, or a tag other than !!str)');
  return readPlain(text, pos, line);
}

/** The lines after the one holding `at` up to the next one with text (or the end), and that one. */
function skipEmptyLines(text: string, at: number): { empty: number; line: Line } {
  let line = lineAt(text, lineAt(text, at).next);
  let empty = 0;
  while (line.start < text.length && isBlank(text, line)) {
    empty++;
    line = lineAt(text, line.next);
  }
  return { empty, line };
}

/**
 * Between two lines of a flow scalar (quoted or plain) a line break is folded: one break is a
 * space, a break followed by k empty lines is k newlines. `at` is where the line's text ends (its
 * trailing white space is not part of the value); returns where the next line's text starts.
 */
function fold(text: string, at: number, out: Output): number {
  const { empty, line } = skipEmptyLines(text, at);
  const next = textStart(text, line);
  out.push(empty === 0 ? ' ' : '\n'.repeat(empty), at, next);
  return next;
}

const SIMPLE_ESCAPES: Record<string, string> = {
  '0': '\0',
  a: '\x07',
  b: '\b',
  t: '\t',
  '\t': '\t',
  n: '\n',
  v: '\v',
  f: '\f',
  r: '\r',
  e: '\x1b',
  ' ': ' ',
  '"': '"',
  '/': '/',
  '\\': '\\',
  N: '\x85',
  _: '\xa0',
  L: '\u2028',
  P: '\u2029',
};
const HEX_DIGITS: Record<string, number> = { x: 2, u: 4, U: 8 };

function readQuoted(text: string, open: number): DecodedScalar {
  const quote = text[open]!;
  const out = new Output();
  let i = open + 1;
  while (i < text.length) {
    const c = text[i]!;
    if (c === quote && quote === "'" && text[i + 1] === "'") {
      out.push("'", i, i + 2);
      i += 2;
    } else if (c === quote) {
      if (!/^[ \t]*(?:#.*)?$/.test(text.slice(i + 1, lineAt(text, i).end)))
        throw new NotAScalar('text follows its closing quote');
      return out.result(quote === '"' ? 'double' : 'single', open, i + 1);
    } else if (c === '\\' && quote === '"') {
      i = readEscape(text, i, out);
    } else if (/[ \t\r\n]/.test(c)) {
      // White space up to a line break is not part of the value: the break folds.
      const end = skipWhite(text, i);
      if (text[end] === '\n' || (text[end] === '\r' && text[end + 1] === '\n')) i = fold(text, i, out);
      else {
        out.copy(text, i, Math.max(end, i + 1));
        i = Math.max(end, i + 1);
      }
    } else {
      out.copy(text, i, i + 1);
      i++;
    }
  }
  throw new NotAScalar(`its ${quote === '"' ? 'double' : 'single'}-quoted text has no closing quote`);
}

/** A `\` escape of a double-quoted scalar at `at`, decoded into `out`; returns where the text goes on. */
function readEscape(text: string, at: number, out: Output): number {
  const e = text[at + 1];
  if (e === '\n' || (e === '\r' && text[at + 2] === '\n')) {
    // An escaped line break joins the lines: only the empty lines after it are newlines.
    const { empty, line } = skipEmptyLines(text, at);
    const next = textStart(text, line);
    out.push('\n'.repeat(empty), at, next);
    return next;
  }
  if (e === undefined) throw new NotAScalar('its double-quoted text has no closing quote');
  const simple = SIMPLE_ESCAPES[e];
  if (simple !== undefined) {
    out.push(simple, at, at + 2);
    return at + 2;
  }
  const digits = HEX_DIGITS[e] ?? 0;
  const hex = text.slice(at + 2, at + 2 + digits);
  if (digits === 0 || !/^[0-9a-fA-F]+$/.test(hex) || hex.length !== digits)
    throw new NotAScalar(`\\${e} is not a YAML escape`);
  try {
    out.push(fromCodePoint(Number.parseInt(hex, 16), `\\${e}${hex}`), at, at + 2 + digits);
  } catch (err) {
    if (err instanceof BadEscape) throw new NotAScalar(err.message);
    throw err;
  }
  return at + 2 + digits;
}

/** A plain scalar's text on one line from `at`: up to a comment or the line's end, trailing white space excluded. */
function plainPart(text: string, at: number, line: Line): { end: number; comment: boolean } {
  const body = text.slice(at, line.end);
  const comment = /[ \t]#/.exec(body);
  const part = (comment ? body.slice(0, comment.index) : body).replace(/[ \t]+$/, '');
  if (/:(?:[ \t]|$)/.test(part)) throw new NotAScalar('a plain scalar cannot hold ": "');
  return { end: at + part.length, comment: comment !== null };
}

/**
 * A plain scalar from `at`: its first line's text, then that of each more-indented line after it
 * (folded: see `fold`), until a comment, a line at column 0 or the end of the text.
 */
function readPlain(text: string, at: number, first: Line): DecodedScalar {
  const out = new Output();
  let line = first;
  let start = at;
  let end = at;
  for (;;) {
    const part = plainPart(text, start, line);
    out.copy(text, start, part.end);
    end = part.end;
    if (part.comment) break;
    const next = skipEmptyLines(text, line.start).line;
    const body = text.slice(next.start, next.end);
    if (next.start >= text.length || !/^[ \t]/.test(body) || /^[ \t]*#/.test(body)) break;
    start = fold(text, part.end, out);
    line = next;
  }
  return out.result('plain', at, end);
}

const BLOCK_HEADER = /^[|>](?:([1-9])([+-]?)|([+-])([1-9]?))?[ \t]*(?:#.*)?$/;

/**
 * A literal (`|`) or folded (`>`) block scalar whose header is at `at`: the lines after it indented
 * by its indentation (given, or the first non-empty line's), that much taken off each. Literal
 * keeps every line break; folded makes a space of a break between two lines of text at that
 * indentation with no empty line between them (more-indented lines keep theirs). Chomping: `-` no
 * final line break, `+` all of them, else one.
 */
function readBlock(text: string, at: number, header: Line): DecodedScalar {
  const m = BLOCK_HEADER.exec(text.slice(at, header.end));
  if (!m) throw new NotAScalar('its block scalar header is malformed');
  const folded = text[at] === '>';
  const chomp = m[2] || m[3] || '';
  let indent = m[1] || m[4] ? Number(m[1] || m[4]) : -1;
  /** Each line of the block: where its text starts, or -1 for an empty one. */
  const lines: Array<{ line: Line; text: number }> = [];
  for (let line = lineAt(text, header.next); line.start < text.length; line = lineAt(text, line.next)) {
    const lead = leadingSpaces(text, line);
    const spacesOnly = lead === line.end - line.start;
    if (spacesOnly && (indent < 0 || lead <= indent)) {
      lines.push({ line, text: -1 });
      continue;
    }
    if (indent < 0) indent = lead;
    if (lead < indent || indent === 0) break;
    lines.push({ line, text: line.start + indent });
  }
  let last = lines.length - 1;
  while (last >= 0 && lines[last]!.text < 0) last--;
  const out = new Output();
  let previous: { line: Line; text: number } | null = null;
  let empty = 0;
  for (const entry of lines.slice(0, last + 1)) {
    if (entry.text < 0) {
      empty++;
      continue;
    }
    const moreIndented = (e: { text: number }) => /[ \t]/.test(text[e.text] ?? '');
    if (previous === null) out.push('\n'.repeat(empty), header.next, entry.text);
    else if (folded && !moreIndented(previous) && !moreIndented(entry))
      out.push(empty === 0 ? ' ' : '\n'.repeat(empty), previous.line.end, entry.text);
    else out.push('\n'.repeat(empty + 1), previous.line.end, entry.text);
    out.copy(text, entry.text, entry.line.end);
    previous = entry;
    empty = 0;
  }
  if (previous !== null && chomp !== '-') {
    const trailing = chomp === '+' ? lines.length - 1 - last : 0;
    out.push('\n'.repeat(1 + trailing), previous.line.end, previous.line.next);
  }
  const end = previous === null ? header.next : previous.line.end;
  return out.result(folded ? 'folded' : 'literal', header.next, end);
}

/** Characters a YAML scalar can hold only escaped: controls, line breaks, a byte-order mark. */
const isUnprintable = (c: string): boolean => {
  const code = c.charCodeAt(0);
  return (code < 0x20 && c !== '\t') || (code >= 0x7f && code <= 0x9f) || /[\u2028\u2029\ufeff]/.test(c);
};

/**
 * How a one-line value is written in place inside a scalar of `style` (between other text of it),
 * and why a value cannot be (null when it can): a double-quoted scalar escapes what it must; the
 * others hold only printable text, and a plain one no `: ` or ` #` (they would end it).
 */
export function scalarWriter(style: ScalarStyle): {
  encode(value: string): string;
  cannotHold(value: string): string | null;
} {
  switch (style) {
    case 'double':
      return {
        encode: (value) =>
          [...value]
            .map((c) =>
              c === '"' || c === '\\'
                ? `\\${c}`
                : isUnprintable(c)
                  ? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`
                  : c,
            )
            .join(''),
        cannotHold: () => null,
      };
    case 'single':
      return { encode: (value) => value.replace(/'/g, "''"), cannotHold: unprintable };
    case 'plain':
      return {
        encode: (value) => value,
        cannotHold: (value) =>
          unprintable(value) ??
          (/(?:^|[ \t])#|:(?:[ \t]|$)/.test(value) ? 'a plain YAML scalar cannot hold ": " or " #"' : null),
      };
    default:
      return { encode: (value) => value, cannotHold: unprintable };
  }
}

const unprintable = (value: string): string | null =>
  [...value].some(isUnprintable) ? 'only a double-quoted YAML scalar can hold its control characters' : null;
