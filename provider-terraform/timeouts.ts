/**
 * The `timeouts { create = "…", update = "…", delete = "…" }` block every
 * resource takes, as Terraform providers conventionally offer it: Go duration
 * strings ("90s", "5m", "1h30m"), 20 minutes when unset. Pure parsing, no I/O.
 */
import type { NestedBlockSpec } from './schema';
import type { CtyValue } from './wire/cty';

export type Action = 'create' | 'update' | 'delete';

export const DEFAULT_TIMEOUT = '20m';

export const timeoutsBlock: NestedBlockSpec = {
  description: `How long create, update and delete may take before the provider stops waiting (default ${DEFAULT_TIMEOUT}).`,
  attributes: Object.fromEntries(
    (['create', 'update', 'delete'] as const).map((action) => [
      action,
      { type: 'string', optional: true, description: `A duration ("90s", "5m", "1h30m") for ${action}.` },
    ]),
  ),
};

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };
const PART = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;

/** Milliseconds of a Go duration string, or null when it is not one (or not positive). */
export function parseDuration(text: string): number | null {
  let ms = 0;
  PART.lastIndex = 0;
  let end = 0;
  for (let m = PART.exec(text); m; m = PART.exec(text)) {
    ms += Number(m[1]) * UNIT_MS[m[2]!]!;
    end = PART.lastIndex;
  }
  return end === text.length && text.length > 0 && ms > 0 ? ms : null;
}

/** The `timeouts` attribute of a resource state, as set (null or unknown values count as unset). */
function setTimeouts(block: CtyValue | undefined): Partial<Record<Action, string>> {
  if (!block || typeof block !== 'object' || Array.isArray(block)) return {};
  const set: Partial<Record<Action, string>> = {};
  for (const action of ['create', 'update', 'delete'] as const) {
    const v = (block as Record<string, CtyValue>)[action];
    if (typeof v === 'string') set[action] = v;
  }
  return set;
}

/** Validation failures as [attribute path, message]. */
export function timeoutFailures(block: CtyValue | undefined): Array<[string[], string]> {
  return Object.entries(setTimeouts(block))
    .filter(([, text]) => parseDuration(text) === null)
    .map(([action, text]) => [
      ['timeouts', action],
      `timeouts.${action}: "${text}" is not a duration (e.g. "90s", "5m", "1h30m")`,
    ]);
}

/** The limit for `action`: its text (as the user wrote it) and milliseconds. */
export function timeoutFor(block: CtyValue | undefined, action: Action): { text: string; ms: number } {
  const text = setTimeouts(block)[action] ?? DEFAULT_TIMEOUT;
  return { text, ms: parseDuration(text) ?? parseDuration(DEFAULT_TIMEOUT)! };
}
