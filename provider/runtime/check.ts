/** `check`: validate a resource's inputs against its schema in schema/resources, as CheckFailures. */
import type { CheckFailure } from '@pulumi/pulumi/dynamic';
import { isUnknown } from './inputs';
import { resourceValidator } from './resource-validators';

/** Failures for `inputs`; inputs not known yet (preview) are checked once they are. */
export function checkInputs(resource: string, inputs: Record<string, unknown>): CheckFailure[] {
  const known = Object.fromEntries(
    // Internal keys (`__provider`, the import option's `__import`) are the plugin's, not the resource's.
    Object.entries(inputs).filter(([k, v]) => !k.startsWith('__') && !isUnknown(v)),
  );
  const validate = resourceValidator(resource);
  if (validate(known)) return [];
  const failures = new Map<string, string>();
  for (const error of validate.errors ?? []) {
    const path = error.instancePath.split('/').filter(Boolean);
    const property = path[0] ?? String(error.params.missingProperty ?? '');
    // A required property missing only because it is unknown is not a failure.
    if (error.params.missingProperty && isUnknown(inputs[String(error.params.missingProperty)])) continue;
    const where = path.length > 1 ? ` (at ${path.join('.')})` : '';
    if (!failures.has(property)) failures.set(property, `${error.message ?? 'is invalid'}${where}`);
  }
  return [...failures].map(([property, reason]) => ({ property, reason: `${property} ${reason}` }));
}
