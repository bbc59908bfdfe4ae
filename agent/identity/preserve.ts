/**
 * `preserve`: "default" (every field that is on by default), "none", or a
 * list of field paths and globs (`*` any run of characters, dots included;
 * `?` one character). Opt-in fields (partition GUIDs) are kept only when a
 * name or glob in the list matches them.
 */
import { INVALID_ARGUMENT } from '../engine/errors';

export type Preserve = 'default' | 'none' | string[];

export interface PreserveFilter {
  selects(path: string, optIn: boolean): boolean;
  /** False for "none": nothing is kept, so nothing is worth a warning. */
  active: boolean;
  /** Exact names (no glob) the caller asked for: each should match a field. */
  names: string[];
}

const MAX_PATTERNS = 256;

export function preserveFilter(preserve: Preserve): PreserveFilter {
  if (preserve === 'none') return { selects: () => false, active: false, names: [] };
  if (preserve === 'default') return { selects: (_path, optIn) => !optIn, active: true, names: [] };
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
    const source = p
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.');
    return new RegExp(`^${source}$`);
  });
  return {
    selects: (path) => patterns.some((re) => re.test(path)),
    active: patterns.length > 0,
    names: preserve.filter((p) => !/[*?]/.test(p)),
  };
}
