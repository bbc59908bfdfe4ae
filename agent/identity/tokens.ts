/** Names inside reference values and config lines, matched as whole words. */

const ALNUM = /[A-Za-z0-9]/;

/** Offsets where `name` occurs in `text` as a whole token (no letter or digit either side). */
export function tokenOccurrences(text: string, name: string, ignoreCase = false): number[] {
  const hay = ignoreCase ? text.toLowerCase() : text;
  const needle = ignoreCase ? name.toLowerCase() : name;
  const found: number[] = [];
  if (needle === '') return found;
  for (let at = hay.indexOf(needle); at >= 0; at = hay.indexOf(needle, at + 1)) {
    const before = at > 0 ? hay[at - 1]! : '';
    const after = hay[at + needle.length] ?? '';
    if (!ALNUM.test(before) && !ALNUM.test(after)) found.push(at);
  }
  return found;
}

/** `text` with each whole-token occurrence of `from` replaced by `to`. */
export function replaceTokens(text: string, from: string, to: string): string {
  let out = '';
  let at = 0;
  for (const i of tokenOccurrences(text, from)) {
    out += text.slice(at, i) + to;
    at = i + from.length;
  }
  return out + text.slice(at);
}
