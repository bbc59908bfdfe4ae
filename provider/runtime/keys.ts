/**
 * Idempotency keys. A key names one logical agent call, once: the resource,
 * the step, what it acts on, and a nonce drawn for this call. The agent
 * client resends the same request (same key) after a dropped connection, so
 * that retry never acts twice; a later operation — the next `pulumi up`, a
 * destroy/up cycle with identical inputs, v1 → v2 → v1, another stack
 * declaring the same name — always gets a new key and is never answered with
 * an earlier operation's result. (A dynamic provider is not told the URN;
 * the nonce is what makes the key unique across stacks.)
 */
import { createHash, randomUUID } from 'node:crypto';
import { stableJson } from '../../schema/stable-json';
import type { AgentContainer, AgentSnapshot } from './agent-api';
import { ProviderError } from './errors';
import { wording } from './front-end';

/** Equal context always hashes the same; the serialized provider itself is not context. */
function contextJson(value: unknown): string {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const { __provider: _ignored, ...rest } = value as Record<string, unknown>;
    return stableJson(rest);
  }
  return stableJson(value);
}

/**
 * A fresh key for one agent call. `resource` and `step` make it readable in
 * the agent's log; `context` (what the call acts on) is hashed into it; the
 * nonce makes it name this call only.
 */
export function idempotencyKey(resource: string, step: string, ...context: unknown[]): string {
  const hash = createHash('sha256')
    .update(`[${context.map(contextJson).join(',')}]`)
    .digest('hex')
    .slice(0, 16);
  return `pulumi:${resource}:${step}:${hash}:${randomUUID()}`;
}

/**
 * A create's answer is believed only once the agent shows it: the name now
 * resolves to the object the answer names. Anything else (an answer from
 * another operation, a concurrent delete) fails the create instead of
 * recording a resource that does not exist.
 */
export function verifyCreated<T extends AgentContainer | AgentSnapshot>(
  operation: string,
  name: string,
  answer: T,
  live: { uuid: string } | null,
): T {
  if (live?.uuid !== answer.uuid) {
    throw new ProviderError(
      operation,
      name,
      'CREATE_NOT_VERIFIED',
      `the agent answered with ${answer.uuid}, but "${name}" is ${live ? live.uuid : 'not there'}; nothing was recorded — run \`${wording().apply}\` again`,
    );
  }
  return answer;
}
