/**
 * The validators of the resources' inputs (schema/resources), compiled at run time (ajv) when
 * the sources run through tsx. The provider's bundle (provider/dist/runtime.js) replaces this
 * module with the same validators compiled ahead of time (scripts/schema-validators.mjs): compiling
 * them here cost every `pulumi preview`/`up` a quarter of a second of CPU before its first check.
 * test/provider/resource-validators.test.ts holds the two to the same verdicts.
 */
import Ajv from 'ajv';
// Every failure reported, so `check` names each property; schema/resources use keywords strict mode questions.
import options from '../../schema/resource-ajv-options.json';

export type ResourceValidator = ((data: unknown) => boolean) & {
  errors?: Array<{ instancePath: string; message?: string; params: Record<string, unknown> }> | null;
};

// Static requires, so the JSON is read only for the resource checked.
const schemas: Record<string, () => object> = {
  container: () => require('../../schema/resources/container.json'),
  snapshot: () => require('../../schema/resources/snapshot.json'),
  'sync-from-snapshot': () => require('../../schema/resources/sync-from-snapshot.json'),
};

const compiled = new Map<string, ResourceValidator>();

/** The validator of one resource's inputs (container, snapshot, sync-from-snapshot), compiled on first use. */
export function resourceValidator(resource: string): ResourceValidator {
  let validate = compiled.get(resource);
  if (!validate) {
    const schema = schemas[resource];
    if (!schema) throw new Error(`no resource schema ${resource}`);
    validate = new Ajv(options).compile(schema()) as ResourceValidator;
    compiled.set(resource, validate);
  }
  return validate;
}
