/**
 * The protocol's validators compiled at run time (ajv), used when the sources run through tsx.
 * The bundles (dist/…) replace this module with validators compiled ahead of time from the same
 * schemas and options (scripts/schema-validators.mjs): compiling them here costs a CLI start
 * about 100 ms of CPU. test/schema/validators.test.ts holds the two to the same verdicts.
 */
import Ajv, { type ValidateFunction } from 'ajv';
import ajvOptions from './ajv-options.json';
import messages from './protocol/messages.json';
import ops from './protocol/ops.json';

export type { ValidateFunction };

let ajv: Ajv | undefined;
const compiled = new Map<string, ValidateFunction>();

/** The validator of one definition of schema/protocol/{messages,ops}.json, compiled on first use. */
export function validator(schema: 'messages' | 'ops', definition: string): ValidateFunction {
  const key = `${schema}#/definitions/${definition}`;
  let validate = compiled.get(key);
  if (!validate) {
    if (!ajv) {
      ajv = new Ajv(ajvOptions);
      ajv.addSchema(messages, 'messages');
      ajv.addSchema(ops, 'ops');
    }
    validate = ajv.getSchema(key);
    if (!validate) throw new Error(`no schema ${key}`);
    compiled.set(key, validate);
  }
  return validate;
}
