/**
 * `preserve`: "default" (every field that is on by default), "none", or a
 * list of field paths and globs (`*` any run of characters, dots included;
 * `?` one character). In a list, "default" stands for the default fields
 * (`["default", "sys.gpt.partition1.uniqueGuid"]`: the defaults and one
 * opt-in field) and "none" for nothing. Opt-in fields (partition GUIDs) are
 * kept only when a name or glob in the list matches them.
 */
import { INVALID_ARGUMENT } from '../engine/errors';

export type Preserve = 'default' | 'none' | string[];

export interface PreserveFilter {
  selects(path: string, optIn: boolean): boolean;
  /** False for "none": nothing is kept, so nothing is worth a warning. */
  active: boolean;
  /**
   * The list's entries (not "default"/"none") that match none of `paths`, the
   * fields the sync saw: each is a warning. An entry for a role the sync did
   * not touch (`untouched`) is not missing: that member kept everything.
   */
  unmatched(paths: Set<string>, untouched: (role: string) => boolean): string[];
}

const KEYWORDS = new Set(['default', 'none']);

const MAX_PATTERNS = 256;

export function preserveFilter(preserve: Preserve): PreserveFilter {
  if (preserve === 'none') return { selects: () => false, active: false, unmatched: () => [] };
  if (preserve === 'default') return { selects: (_path, optIn) => !optIn, active: true, unmatched: () => [] };
  if (!Array.isArray(preserve) || preserve.length > MAX_PATTERNS) {
    throw INVALID_ARGUMENT(
      `preserve must be "default", "none" or a list of up to ${MAX_PATTERNS} field paths or globs`,
      {
        argument: 'preserve',
      },
    );
  }
  const patterns = preserve.map((p, i) => {
    if (typeof p !== 'string' || p.length === 0 || p.length > 256) {
      throw INVALID_ARGUMENT(`preserve[${i}] must be a field path or glob of 1 to 256 characters`, {
        argument: `preserve.${i}`,
        value: p,
      });
    }
    return { entry: p, re: globRegExp(p) };
  });
  const withDefaults = preserve.includes('default');
  const fields = patterns.filter((p) => !KEYWORDS.has(p.entry));
  return {
    selects: (path, optIn) => (withDefaults && !optIn) || fields.some((p) => p.re.test(path)),
    active: withDefaults || fields.length > 0,
    unmatched: (paths, untouched) =>
      fields
        .filter(({ entry, re }) => {
          const role = entry.split('.')[0]!;
          if (entry.includes('.') && !/[*?]/.test(role) && untouched(role)) return false;
          for (const path of paths) if (re.test(path)) return false;
          return true;
        })
        .map((p) => p.entry),
  };
}

function globRegExp(glob: string): RegExp {
  const source = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${source}$`);
}
