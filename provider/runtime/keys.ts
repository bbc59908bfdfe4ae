/**
 * Idempotency keys, derived from the resource (URN), the operation and the
 * state it starts from: a retry of the same step after a dropped connection
 * or a failed `pulumi up` sends the same key, so the agent answers with the
 * first result instead of acting twice.
 */
import { createHash } from 'node:crypto';
import { stableJson } from '../../schema/stable-json';

/** Equal state always hashes the same; the serialized provider itself is not state. */
function stateJson(value: unknown): string {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const { __provider: _ignored, ...rest } = value as Record<string, unknown>;
    return stableJson(rest);
  }
  return stableJson(value);
}

export function idempotencyKey(urn: string, operation: string, ...state: unknown[]): string {
  const hash = createHash('sha256')
    .update(`[${state.map(stateJson).join(',')}]`)
    .digest('hex')
    .slice(0, 32);
  return `pulumi:${urn}:${operation}:${hash}`;
}
