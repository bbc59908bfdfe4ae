/**
 * The `import` resource option, for dynamic resources. The engine's import
 * step calls Read with the id alone, and a dynamic provider lives in the
 * resource's state, so the plugin cannot serve it (`code must be a string`).
 * The resource classes therefore move the option's id into an input,
 * `__import`; `check` compares the declared inputs with the existing object
 * (read-only, so a preview fails as an import with other inputs would), and
 * `create` adopts the object instead of creating one. Inputs the agent would
 * change on the next update must match; the comparison reads one object (a
 * sync: its lineage). The key is internal (`__`): the CLI does not show it,
 * and no diff looks at it, so removing the option later changes nothing.
 */
import type { CheckFailure } from '@pulumi/pulumi/dynamic';
import { stableJson } from '../../schema/stable-json';
import type { AgentApi } from './agent-api';
import { ProviderError } from './errors';
import { isUnknown } from './inputs';
import { preflight } from './preflight';

/** The input the resource classes put the `import` option's id in. */
export const IMPORT_KEY = '__import';

/** The id to adopt, when the inputs carry one. */
export function importIdOf(inputs: object): string | undefined {
  const id = (inputs as Record<string, unknown>)[IMPORT_KEY];
  return typeof id === 'string' && id !== '' ? id : undefined;
}

/** The inputs without the import id (what the outputs and the comparison use). */
export function withoutImportId<T extends object>(inputs: T): T {
  const { [IMPORT_KEY]: _id, ...rest } = inputs as Record<string, unknown>;
  return rest as T;
}

/** One declared input that differs from the existing object, worded for the error. */
export function difference(property: string, declared: unknown, live: unknown): string[] {
  const show = (value: unknown) => (value === undefined ? 'none' : stableJson(value));
  return stableJson(declared) === stableJson(live)
    ? []
    : [`${property}: declared ${show(declared)}, the agent has ${show(live)}`];
}

/** The error of an import whose object is missing or differs from the declared inputs. */
export function importError(
  container: string,
  id: string,
  what: string,
  differences: string[] | null,
): ProviderError {
  return differences === null
    ? new ProviderError(
        'import',
        container,
        'NOT_FOUND',
        `${what} "${id}" does not exist (without the \`import\` option, up creates it)`,
      )
    : new ProviderError(
        'import',
        container,
        'IMPORT_MISMATCH',
        `the declared inputs differ from the existing ${what} "${id}" (${differences.join('; ')}): declare what the agent has and change it after the import (remove the \`import\` option once imported)`,
      );
}

/**
 * Whether `check` sees a resource to import: an import id (known or not yet)
 * and no previous inputs. A resource already in the stack keeps the option
 * without effect; a replacement (checked without olds) is compared like an
 * import, so one that still carries the option fails its preview instead of
 * adopting or creating the wrong object.
 */
export function importing(olds: Record<string, unknown>, news: Record<string, unknown>): boolean {
  return news[IMPORT_KEY] !== undefined && Object.keys(olds ?? {}).length === 0;
}

/** `check` of a resource to import: `adopt` (read-only) must find the object and match. */
export async function checkImport(
  kind: string,
  container: unknown,
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
  adopt: (agent: AgentApi, id: string) => Promise<unknown>,
): Promise<CheckFailure[]> {
  const id = news[IMPORT_KEY];
  const uses = Object.keys(news).filter((key) => key !== '__provider');
  const failures = await preflight(kind, container, olds, news, uses, async (agent) => {
    await adopt(agent, id as string);
  });
  if (failures.length === 0 && !isUnknown(id)) {
    process.stderr.write(
      `snapsync: ${kind} "${String(container)}" is imported from "${String(id)}": up records the existing object and creates nothing\n`,
    );
  }
  return failures;
}
