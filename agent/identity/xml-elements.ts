/**
 * A small XML element scanner for identity profiles: the element tree with
 * every tag's and attribute value's character offsets, skipping comments,
 * CDATA, processing instructions and the doctype. No entity expansion, no
 * round-trip: callers rewrite spans of the original text.
 */

const START_TAG = /<([A-Za-z_][\w.:-]*)((?:\s+[A-Za-z_][\w.:-]*\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>/y;
const END_TAG = /<\/([A-Za-z_][\w.:-]*)\s*>/y;
const ATTRIBUTE = /(\s+)([A-Za-z_][\w.:-]*)\s*=\s*(?:"([^"<]*)"|'([^'<]*)')/g;

export interface XmlAttribute {
  name: string;
  /** The value as written (entities not decoded). */
  raw: string;
  quote: '"' | "'";
  /** Offsets of the value (inside the quotes). */
  start: number;
  end: number;
  /** Offset of the whitespace before the name: [whole, end + 1) is the attribute with its separator. */
  whole: number;
}

export interface XmlElement {
  name: string;
  parent: XmlElement | null;
  children: XmlElement[];
  attributes: XmlAttribute[];
  /** Offset of `<` of the start tag, and just past the element's end (`/>` or its end tag). */
  start: number;
  end: number;
  /** The text between the start and end tag ([contentStart, contentEnd)), empty for `<x/>`. */
  contentStart: number;
  contentEnd: number;
}

export function scanXml(text: string): { ok: true; root: XmlElement } | { ok: false; error: string } {
  let root: XmlElement | null = null;
  const stack: XmlElement[] = [];
  let at = 0;
  const skip = (from: number, opening: string, closing: string): number | string => {
    const end = text.indexOf(closing, from + opening.length);
    return end < 0 ? `unterminated ${opening} at offset ${from}` : end + closing.length;
  };
  while (true) {
    const lt = text.indexOf('<', at);
    if (lt < 0) break;
    let next: number | string;
    if (text.startsWith('<!--', lt)) next = skip(lt, '<!--', '-->');
    else if (text.startsWith('<![CDATA[', lt)) next = skip(lt, '<![CDATA[', ']]>');
    else if (text.startsWith('<?', lt)) next = skip(lt, '<?', '?>');
    else if (text.startsWith('<!', lt)) next = skip(lt, '<!', '>');
    else if (text.startsWith('</', lt)) {
      END_TAG.lastIndex = lt;
      const end = END_TAG.exec(text);
      if (!end) return { ok: false, error: `malformed end tag at offset ${lt}` };
      const open = stack.pop();
      if (open?.name !== end[1])
        return { ok: false, error: `</${end[1]}> at offset ${lt} closes nothing open` };
      open.contentEnd = lt;
      open.end = END_TAG.lastIndex;
      next = END_TAG.lastIndex;
    } else {
      START_TAG.lastIndex = lt;
      const tag = START_TAG.exec(text);
      if (!tag) return { ok: false, error: `malformed tag at offset ${lt}` };
      const parent = stack[stack.length - 1] ?? null;
      if (root !== null && parent === null)
        return { ok: false, error: `a second root element <${tag[1]}> at offset ${lt}` };
      const attrsAt = lt + 1 + tag[1]!.length;
      const attributes: XmlAttribute[] = [...tag[2]!.matchAll(ATTRIBUTE)].map((a) => {
        const raw = a[3] ?? a[4]!;
        const end = attrsAt + a.index! + a[0].length - 1;
        return {
          name: a[2]!,
          raw,
          quote: a[3] !== undefined ? '"' : "'",
          start: end - raw.length,
          end,
          whole: attrsAt + a.index!,
        };
      });
      const element: XmlElement = {
        name: tag[1]!,
        parent,
        children: [],
        attributes,
        start: lt,
        end: START_TAG.lastIndex,
        contentStart: START_TAG.lastIndex,
        contentEnd: START_TAG.lastIndex,
      };
      if (parent) parent.children.push(element);
      else root = element;
      if (tag[3] !== '/') stack.push(element);
      next = START_TAG.lastIndex;
    }
    if (typeof next === 'string') return { ok: false, error: next };
    at = next;
  }
  if (root === null) return { ok: false, error: 'no root element' };
  if (stack.length > 0) return { ok: false, error: `<${stack[stack.length - 1]!.name}> is never closed` };
  return { ok: true, root };
}

export const attribute = (e: XmlElement, name: string): XmlAttribute | undefined =>
  e.attributes.find((a) => a.name === name);

export const child = (e: XmlElement, name: string): XmlElement | undefined =>
  e.children.find((c) => c.name === name);

/** The element and every element under it, in document order. */
export function* descendants(e: XmlElement): Generator<XmlElement> {
  yield e;
  for (const c of e.children) yield* descendants(c);
}

/**
 * [start, end) of an element, widened to its whole line(s) (indentation and
 * line break) when nothing else is on them, so that removing it leaves no blank line.
 */
export function elementLines(text: string, e: XmlElement): { start: number; end: number } {
  const lineStart = text.lastIndexOf('\n', e.start - 1) + 1;
  const newline = text.indexOf('\n', e.end);
  const lineEnd = newline < 0 ? text.length : newline + 1;
  const before = text.slice(lineStart, e.start);
  const after = text.slice(e.end, lineEnd);
  if (/^[ \t]*$/.test(before) && /^[ \t]*\r?\n?$/.test(after)) return { start: lineStart, end: lineEnd };
  return { start: e.start, end: e.end };
}
