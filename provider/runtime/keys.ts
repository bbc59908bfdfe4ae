/**
 * Idempotency keys, derived from the resource (URN), the operation and the
 * state it starts from: a retry of the same step after a dropped connection
 * or a failed `pulumi up` sends the same key, so the agent answers with the
 * first result instead of acting twice.
 */
import { createHash } from 'node:crypto';

/** JSON with sorted keys, so equal values always hash the same. */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .filter((k) => k !== '__provider' && (value as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

export function idempotencyKey(urn: string, operation: string, ...state: unknown[]): string {
  const hash = createHash('sha256').update(stableJson(state)).digest('hex').slice(0, 32);
  return `pulumi:${urn}:${operation}:${hash}`;
}
