/**
 * Warnings an agent's answer carries (a create, clone, import or resize that takes the pool's
 * declared total beyond its capacity: OVERCOMMITTED), shown by the front end:
 * the Terraform provider collects those of each call (collectWarnings) and
 * returns them as warning diagnostics; the Pulumi dynamic provider has no
 * engine connection for pulumi.log, so it writes them to its stderr, which
 * `pulumi up` shows (as the runtime's other notices).
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface ResourceWarning {
  /** The resource it is about: its kind (`container`) and name. */
  kind: string;
  name: string;
  code: string;
  message: string;
}

const collecting = new AsyncLocalStorage<ResourceWarning[]>();

export function reportWarnings(
  kind: string,
  name: string,
  warnings: ReadonlyArray<{ code: string; message: string }> | undefined,
): void {
  for (const { code, message } of warnings ?? []) {
    const sink = collecting.getStore();
    if (sink) sink.push({ kind, name, code, message });
    else process.stderr.write(`warning: snapsync: ${kind} "${name}": [${code}] ${message}\n`);
  }
}

/** Runs `fn`, keeping the warnings reported meanwhile instead of writing them. */
export async function collectWarnings<T>(
  fn: () => Promise<T>,
): Promise<{ result: T; warnings: ResourceWarning[] }> {
  const warnings: ResourceWarning[] = [];
  const result = await collecting.run(warnings, fn);
  return { result, warnings };
}
