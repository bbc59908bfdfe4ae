/**
 * Reading replies of a newer agent: a property this client's schemas do not
 * know is dropped, not fatal. Agents are upgraded host by host, before the
 * Pulumi programs, Terraform providers and scripts that talk to them; a new
 * result field (or an idempotency record a newer agent stored and an older
 * one replays) must not turn every call of an older client into
 * INVALID_REPLY. What the client does know is still checked in full: a known
 * field of the wrong type, a missing required one or an unknown enum value is
 * still INVALID_REPLY.
 *
 * How: validate with the strict validator (the same, precompiled in the
 * bundles); take out each property an `additionalProperties: false` error
 * names; validate again, until no such error is left. Safe only while no
 * `oneOf`/`anyOf` in a reply's schema has two branches that may be objects
 * (a branch that does not match would name the other's properties as
 * unknown): test/schema/forward-compatible.test.ts holds the schemas to that.
 *
 * Cost: one validation when nothing is unknown; one more per nesting level of
 * unknown properties.
 */
import type { ErrorObject } from 'ajv';
import type { ValidateFunction } from './validators';

/** Deepest nesting of unknown properties taken out (each level is one more validation). */
const MAX_PASSES = 32;

/** The value at a JSON pointer (ajv's instancePath), or undefined. */
function at(root: unknown, pointer: string): unknown {
  if (pointer === '') return root;
  let value = root;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

function unknownProperties(errors: ErrorObject[] | null | undefined): Array<[string, string]> {
  return (errors ?? [])
    .filter((e) => e.keyword === 'additionalProperties')
    .map((e) => [e.instancePath, (e.params as { additionalProperty: string }).additionalProperty]);
}

/**
 * Validates `value`, first taking out (in place) every property the schema
 * does not know. Returns whether what is left is valid; `validate.errors`
 * then says why not.
 */
export function validateDroppingUnknown(validate: ValidateFunction, value: unknown): boolean {
  for (let pass = 0; pass < MAX_PASSES; pass++) {
    if (validate(value)) return true;
    const unknown = unknownProperties(validate.errors);
    if (unknown.length === 0) return false;
    let removed = 0;
    for (const [path, property] of unknown) {
      const holder = at(value, path);
      if (holder !== null && typeof holder === 'object' && Object.hasOwn(holder, property)) {
        delete (holder as Record<string, unknown>)[property];
        removed++;
      }
    }
    if (removed === 0) return false;
  }
  return validate(value);
}
