/**
 * The safety net after a restore, whatever the format: a synced config must
 * not name the source's containers (the VM and its members) or their UUIDs,
 * nor still hold an identity value the restore replaced (the source's UUID,
 * GUID or MAC, left in a <description> or an entry no profile reads).
 * A match counts as a whole token (no letter or digit either side), outside
 * the target's own container names (a target `web-staging` contains a source
 * `web`), and on a line that the target's config did not already have word
 * for word before the sync, leading and trailing whitespace aside (the
 * target's own text is never the source's, whatever its indentation), nor
 * on a line holding an identity value the caller chose not to keep (preserve).
 */
import { isUtf8 } from 'node:buffer';
import { tokenOccurrences } from './tokens';

export interface SourceName {
  /** The name or UUID as the pool knows it. */
  name: string;
  /** Spellings to look for (a UUID: with and without dashes, and as a .vmx writes it). */
  forms: string[];
}

export interface SourceHit {
  name: string;
  line: number;
  text: string;
}

/** The spellings of a container UUID in config files. */
export function uuidForms(uuid: string): string[] {
  const hex = uuid.replace(/-/g, '').toLowerCase();
  const pairs = hex.match(/../g) ?? [];
  const vmx = `${pairs.slice(0, 8).join(' ')}-${pairs.slice(8).join(' ')}`;
  return [uuid.toLowerCase(), hex, vmx];
}

/**
 * The spellings of an identity value the restore replaced (the source's UUID, GUID or MAC), or null when
 * it is too short or loose to be told from other text by chance (a name, a serial, an 8-digit signature).
 */
export function identityForms(value: string): string[] | null {
  if (!/^[0-9a-f:.\- ]+$/i.test(value)) return null;
  const hex = value.replace(/[^0-9a-f]/gi, '').toLowerCase();
  const pairs = hex.match(/../g) ?? [];
  let forms: string[];
  if (hex.length === 32) {
    const dashed = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    forms = uuidForms(dashed);
  } else if (hex.length === 12) forms = [pairs.join(':'), pairs.join('-'), hex];
  else return null;
  return [...new Set([value.toLowerCase(), ...forms])];
}

const lines = (text: string) => text.split('\n').map((l) => l.replace(/\r$/, ''));

export function scanForSource(
  text: string,
  targetBefore: string | null,
  names: SourceName[],
  targetNames: string[],
  /** Lines the caller chose to take from the source (an identity value preserve did not keep). */
  exempt: string[] = [],
): SourceHit[] {
  // Most files name nothing of the source's: one pass over the whole text spares the line by line search.
  const whole = text.toLowerCase();
  if (!names.some((n) => n.forms.some((form) => whole.includes(form.toLowerCase())))) return [];
  // Compared without the indentation: a kept reference is the target's line in the source's indentation.
  const own = new Set(
    [...(targetBefore === null ? [] : lines(targetBefore)), ...exempt].map((l) => l.trim()),
  );
  // The longest first: a line naming `prod-disk1` is reported as that, not as the VM `prod` it contains.
  const longestFirst = [...names].sort((a, b) => b.name.length - a.name.length);
  const hits: SourceHit[] = [];
  lines(text).forEach((line, index) => {
    if (own.has(line.trim())) return;
    // Lower-cased once: a file member's "line" may be megabytes of binary.
    const lower = line.toLowerCase();
    const masked: Array<[number, number]> = [];
    for (const t of targetNames)
      for (const at of tokenOccurrences(lower, t.toLowerCase())) masked.push([at, at + t.length]);
    for (const n of longestFirst) {
      for (const form of n.forms) {
        const at = tokenOccurrences(lower, form.toLowerCase()).find(
          (i) => !masked.some(([s, e]) => i >= s && i + form.length <= e),
        );
        if (at !== undefined) {
          hits.push({ name: n.name, line: index + 1, text: excerpt(line, at) });
          return;
        }
      }
    }
  });
  return hits;
}

const EXCERPT = 200;

/** The line, or on a longer one (a binary file's) the part around the match. */
function excerpt(line: string, at: number): string {
  const trimmed = line.trim();
  if (trimmed.length <= EXCERPT) return trimmed;
  const start = Math.max(0, at - EXCERPT / 4);
  return line.slice(start, start + EXCERPT).trim();
}

/**
 * Any synced file member, whatever its role or format (a launch script, an EFI variable store): its
 * bytes are searched as the text they hold (UTF-8, else one character per byte, so an ASCII name is
 * found in binary), and as UTF-16LE at both byte alignments, as Windows and EFI store names. The
 * rules are scanForSource's; a line is what lies between two newline characters of that decoding.
 */
export function scanBytesForSource(
  bytes: Buffer,
  targetBefore: Buffer | null,
  names: SourceName[],
  targetNames: string[],
): SourceHit[] {
  const utf8 = isUtf8(bytes);
  // Names, UUIDs and MACs are ASCII: looked for in the bytes first, so a file naming nothing of the
  // source's (the usual case) is never decoded (lower-casing megabytes of UTF-16 is slow).
  const lower = asciiLowerCase(bytes);
  const holds = (encoding: 'latin1' | 'utf16le') =>
    names.some((n) => n.forms.some((form) => lower.includes(Buffer.from(form.toLowerCase(), encoding))));
  const decodings: Array<{ label: string; decode: (b: Buffer) => string }> = [];
  if (holds('latin1')) decodings.push({ label: '', decode: (b) => b.toString(utf8 ? 'utf8' : 'latin1') });
  if (holds('utf16le')) {
    for (const skip of [0, 1])
      decodings.push({ label: 'UTF-16LE: ', decode: (b) => b.subarray(skip).toString('utf16le') });
  }
  const hits: SourceHit[] = [];
  for (const { label, decode } of decodings) {
    const before = targetBefore === null ? null : decode(targetBefore);
    for (const hit of scanForSource(decode(bytes), before, names, targetNames))
      hits.push({ ...hit, text: label + printable(hit.text, utf8 && label === '') });
  }
  return hits;
}

/**
 * A copy with A-Z made a-z byte by byte: exact for ASCII in UTF-8, in one byte per character and in
 * UTF-16LE alike (no byte becomes or stops being zero, so no non-ASCII character turns into ASCII).
 */
function asciiLowerCase(bytes: Buffer): Buffer {
  const out = Buffer.from(bytes);
  for (let i = 0; i < out.length; i++) {
    const byte = out[i]!;
    if (byte >= 0x41 && byte <= 0x5a) out[i] = byte + 0x20;
  }
  return out;
}

/** Control characters (and, outside UTF-8 text, anything not ASCII) shown as `.` in a message. */
function printable(text: string, unicode: boolean): string {
  return text.replace(unicode ? /[\p{Cc}\p{Cs}]/gu : /[^\x20-\x7e]/g, '.');
}
