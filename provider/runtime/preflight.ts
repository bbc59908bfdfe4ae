/**
 * Previews that tell the truth: when a resource's inputs are known, `check`
 * asks its agent (read-only: connect, describe) whether `up` would succeed,
 * and turns what would fail into check failures carrying the same coded
 * message `up` would print — one line per resource, no stack trace (the
 * plugin prints a stack for anything `check` throws). Inputs not known yet
 * skip the probe, and say so on stderr (the CLI shows it).
 */
import type { CheckFailure } from '@pulumi/pulumi/dynamic';
import { stableJson } from '../../schema/stable-json';
import type { AgentApi } from './agent-api';
import { agentFor } from './connections';
import { ProviderError } from './errors';
import { isUnknown } from './inputs';

/** A failure the probe found: which input it is about ('' for the agent itself) and up's error. */
export class PreflightFailure extends Error {
  constructor(
    readonly property: string,
    readonly error: ProviderError,
  ) {
    super(error.message);
  }
}

let enabled = true;

/**
 * Turns the probe off for a front end that checks inputs before it configures
 * the agent: Terraform calls ValidateResourceConfig before ConfigureProvider.
 */
export function disablePreflight(): void {
  enabled = false;
}

/** Unchanged inputs change nothing on the agent: their preview is not probed (nor is dropping the import id). */
function unchanged(olds: Record<string, unknown>, news: Record<string, unknown>): boolean {
  const plain = (o: Record<string, unknown>) => {
    const { __provider: _p, __import: _i, ...rest } = o ?? {};
    return stableJson(rest);
  };
  return Object.keys(olds ?? {}).length > 0 && plain(olds) === plain(news);
}

/**
 * Runs `probe` against the agent of `inputs` and returns up's errors as
 * check failures. `uses` are the inputs the probe reads; `container` names
 * the resource in messages.
 */
export async function preflight(
  kind: string,
  container: unknown,
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
  uses: string[],
  probe: (agent: AgentApi) => Promise<void>,
): Promise<CheckFailure[]> {
  if (!enabled || unchanged(olds, news)) return [];
  const unknown = uses.filter((key) => isUnknown(news[key]));
  const named = typeof container === 'string' && !isUnknown(container);
  if (unknown.length > 0 || !named) {
    process.stderr.write(
      `snapsync: ${kind} ${named ? `"${container}"` : '(name not known yet)'} not checked against the agent in this preview: ${unknown.join(', ') || 'its name'} not known yet\n`,
    );
    return [];
  }
  try {
    await probe(await agentFor(news.agentUrl as string | undefined, container));
    return [];
  } catch (err) {
    if (err instanceof PreflightFailure) return [{ property: err.property, reason: err.message }];
    if (err instanceof ProviderError) return [{ property: '', reason: err.message }];
    const message = err instanceof Error ? err.message : String(err);
    return [{ property: '', reason: `snapsync connect of "${container}" failed: [CONFIG] ${message}` }];
  }
}

/** A failure about `property`, worded as `up`'s error for `operation` of `container`. */
export function fail(
  property: string,
  operation: string,
  container: string,
  code: string,
  detail: string,
): never {
  throw new PreflightFailure(property, new ProviderError(operation, container, code, detail));
}
