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

/**
 * Runs a create whose idempotency key derives from the inputs alone. The agent
 * replays a key's first result for days, so once the object was deleted the
 * same inputs (`pulumi destroy` then `up`, or v1 → v2 → v1) would get the
 * deleted object's answer back and create nothing: when the answer names an
 * object that is not there any more, create again under a key salted with it.
 */
export async function createOnce<T extends { uuid: string }>(
  create: (salt: string | undefined) => Promise<T>,
  stillThere: (result: T) => Promise<boolean>,
): Promise<T> {
  const first = await create(undefined);
  return (await stillThere(first)) ? first : create(first.uuid);
}
