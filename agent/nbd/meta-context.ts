/**
 * Metadata contexts: the only one served is `base:allocation`. Query rules
 * (proto.md, "Metadata querying"): `base:` is a wildcard when listing and
 * ignored when setting; unknown namespaces and leaves are ignored; a query
 * without a namespace is invalid.
 */
import { BASE_ALLOCATION } from './constants';

/** Contexts matched by the queries, or null if a query is malformed. */
export function matchContexts(queries: string[], mode: 'list' | 'set'): string[] | null {
  if (queries.length === 0) return mode === 'list' ? [BASE_ALLOCATION] : [];
  let allocation = false;
  for (const query of queries) {
    const colon = query.indexOf(':');
    if (colon <= 0) return null;
    if (query === BASE_ALLOCATION || (mode === 'list' && query === 'base:')) allocation = true;
  }
  return allocation ? [BASE_ALLOCATION] : [];
}
