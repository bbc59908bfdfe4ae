/**
 * libvirt domain XML: the domain's <name> and <uuid> (children of <domain>),
 * and the address of each <interface>'s <mac> under <devices>, numbered in
 * document order from 0. A small scanner tracks element nesting (skipping
 * comments, CDATA, processing instructions and the doctype), so a <name>
 * inside <metadata> or a commented-out interface is not taken; values are
 * text spans and the rest of the document stays byte for byte as it was
 * (no XML library round-trip).
 */
import { BadEscape, fromCodePoint } from './code-point';
import type { FieldValue } from './fields';
import { libvirtReferences } from './libvirt-references';
import { type ParsedConfig, sameStyleOr, type ValueSpan } from './spans';
import { scanXml } from './xml-elements';

const START_TAG = /<([A-Za-z_][\w.:-]*)((?:\s+[A-Za-z_][\w.:-]*\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>/y;
const END_TAG = /<\/([A-Za-z_][\w.:-]*)\s*>/y;
const ATTRIBUTE = /\s([A-Za-z_][\w.:-]*)\s*=\s*(?:"([^"<]*)"|'([^'<]*)')/g;

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

export const decodeXml = (raw: string): string =>
  raw.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-z]+);/g, (m, e: string) => {
    if (e.startsWith('#x')) return fromCodePoint(Number.parseInt(e.slice(2), 16), m);
    if (e.startsWith('#')) return fromCodePoint(Number.parseInt(e.slice(1), 10), m);
    return ENTITIES[e] ?? m;
  });

const encodeText = (value: string) =>
  value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const encodeAttribute = (quote: string) => (value: string) =>
  encodeText(value).replace(quote === '"' ? /"/g : /'/g, quote === '"' ? '&quot;' : '&apos;');

export function looksLikeLibvirt(text: string): boolean {
  return /^\uFEFF?\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--[\s\S]*?-->\s*)*<domain[\s>]/.test(text);
}

export function parseLibvirt(text: string): ParsedConfig {
  const spans: ValueSpan[] = [];
  const problems: Array<{ field: string; message: string }> = [];
  const stack: string[] = [];
  /** The domain-level <name>/<uuid> being read: where its text starts. */
  let open: { field: string; start: number; nested: boolean } | null = null;
  let interfaces = 0;
  let root: string | null = null;
  let at = 0;
  /** A value's decoded text, or null (and a problem) when an escape names no character. */
  const decoded = (field: string, raw: string): string | null => {
    try {
      return decodeXml(raw);
    } catch (err) {
      if (!(err instanceof BadEscape)) throw err;
      problems.push({ field, message: err.message });
      return null;
    }
  };
  const skip = (from: number, opening: string, closing: string): number | string => {
    const end = text.indexOf(closing, from + opening.length);
    return end < 0 ? `unterminated ${opening} at offset ${from}` : end + closing.length;
  };
  while (true) {
    const lt = text.indexOf('<', at);
    if (lt < 0) break;
    let next: number | string;
    if (text.startsWith('<!--', lt)) next = skip(lt, '<!--', '-->');
    else if (text.startsWith('<![CDATA[', lt)) {
      if (open) open.nested = true; // a CDATA value is not a plain text span
      next = skip(lt, '<![CDATA[', ']]>');
    } else if (text.startsWith('<?', lt)) next = skip(lt, '<?', '?>');
    else if (text.startsWith('<!', lt)) next = skip(lt, '<!', '>');
    else if (text.startsWith('</', lt)) {
      END_TAG.lastIndex = lt;
      const end = END_TAG.exec(text);
      if (!end) return { ok: false, error: `malformed end tag at offset ${lt}` };
      if (stack.pop() !== end[1])
        return { ok: false, error: `</${end[1]}> at offset ${lt} closes nothing open` };
      if (open && stack.length === 1) {
        const raw = text.slice(open.start, lt);
        if (open.nested) problems.push({ field: open.field, message: `<${end[1]}> holds markup, not text` });
        else if (!spans.some((s) => s.field === open!.field)) {
          const text = decoded(open.field, raw);
          const value: FieldValue = { value: text ?? '', raw, style: 'text' };
          if (text !== null)
            spans.push({
              field: open.field,
              value,
              start: open.start,
              end: lt,
              encode: sameStyleOr('text', encodeText),
            });
        }
        open = null;
      }
      next = END_TAG.lastIndex;
    } else {
      START_TAG.lastIndex = lt;
      const tag = START_TAG.exec(text);
      if (!tag) return { ok: false, error: `malformed tag at offset ${lt}` };
      const name = tag[1]!;
      const selfClosing = tag[3] === '/';
      const path = [...stack, name].join('/');
      if (root === null) root = name;
      else if (stack.length === 0)
        return { ok: false, error: `a second root element <${name}> at offset ${lt}` };
      if (open) open.nested = true;
      if (path === 'domain/name' || path === 'domain/uuid') {
        if (!selfClosing) open = { field: `libvirt.${name}`, start: START_TAG.lastIndex, nested: false };
      } else if (path === 'domain/devices/interface') interfaces++;
      else if (path === 'domain/devices/interface/mac') {
        const field = `libvirt.interface${interfaces - 1}.mac`;
        const attrsAt = lt + 1 + name.length;
        const address = [...tag[2]!.matchAll(ATTRIBUTE)].find((a) => a[1] === 'address');
        if (!address) problems.push({ field, message: 'the <mac> element has no address' });
        else if (!spans.some((s) => s.field === field)) {
          const quote = address[2] !== undefined ? '"' : "'";
          const raw = address[2] ?? address[3]!;
          const start = attrsAt + address.index! + address[0].length - raw.length - 1;
          const text = decoded(field, raw);
          const value: FieldValue = { value: text ?? '', raw, style: quote };
          if (text !== null)
            spans.push({
              field,
              value,
              start,
              end: start + raw.length,
              encode: sameStyleOr(quote, encodeAttribute(quote)),
            });
        }
      }
      if (!selfClosing) stack.push(name);
      next = START_TAG.lastIndex;
    }
    if (typeof next === 'string') return { ok: false, error: next };
    at = next;
  }
  if (root !== 'domain') return { ok: false, error: 'the root element is not <domain>' };
  if (stack.length > 0) return { ok: false, error: `<${stack[stack.length - 1]}> is never closed` };
  const tree = scanXml(text);
  if (!tree.ok) return tree;
  const references = libvirtReferences(text, tree.root);
  return {
    ok: true,
    spans: [...spans, ...references.spans],
    problems: [...problems, ...references.problems],
    devices: references.devices,
  };
}
