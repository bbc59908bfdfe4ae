/**
 * Decoding a numeric escape (XML `&#x…;`, YAML `\U…`): String.fromCodePoint
 * throws a RangeError past U+10FFFF, and a parser must never throw out of a
 * sync. An escape that names no Unicode scalar value is unparsable instead.
 */
export class BadEscape extends Error {}

export function fromCodePoint(code: number, written: string): string {
  if (!Number.isInteger(code) || code < 0 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff))
    throw new BadEscape(`${written} is not a Unicode character`);
  return String.fromCodePoint(code);
}
