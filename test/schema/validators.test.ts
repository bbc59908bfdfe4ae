/**
 * The bundles validate with code ajv compiled ahead of time (scripts/schema-validators.mjs); the
 * sources compile at run time (schema/validators.ts). Both must give the same verdict and the
 * same errors (as a client sees them) for the same value: this runs each precompiled definition and its run-time twin
 * over values built from the schema itself (one of each declared type, every property filled,
 * then each broken in turn).
 */
import * as assert from 'node:assert/strict';
import messages from '../../schema/protocol/messages.json';
import ops from '../../schema/protocol/ops.json';
import { validator } from '../../schema/validators';
import { loadPrecompiledModule } from '../helpers/precompiled-validators';
import { instance, type Schema, samples, seen } from '../helpers/schema-samples';

interface Precompiled {
  keys: string[];
  validator(schema: string, definition: string): ((value: unknown) => boolean) & { errors?: unknown };
}

function loadPrecompiled(): Precompiled {
  const { keys, exports } = loadPrecompiledModule('precompiledKeys', 'precompiledValidatorsSource');
  return { keys, validator: exports.validator as Precompiled['validator'] };
}

const documents: Record<string, Schema> = { messages, ops };

function resolve(document: string, schema: Schema): Schema {
  const ref = schema.$ref as string | undefined;
  if (!ref) return schema;
  const name = ref.split('/').pop()!;
  const definitions = documents[document]!.definitions as Record<string, Schema>;
  return resolve(document, definitions[name]!);
}

describe('schema validators: precompiled (bundles) and run-time (sources)', () => {
  const precompiled = loadPrecompiled();

  it('precompiles every messages definition and every op params and result', () => {
    assert.ok(precompiled.keys.includes('messages#/definitions/Request'));
    assert.ok(precompiled.keys.includes('ops#/definitions/SyncParams'));
    assert.ok(precompiled.keys.length > 50, `${precompiled.keys.length} keys`);
    assert.throws(() => precompiled.validator('ops', 'NoSuchDefinition'), /no precompiled schema/);
  });

  it('give the same verdict and the same errors for every sample of every definition', () => {
    let valid = 0;
    let checked = 0;
    for (const key of precompiled.keys) {
      const [document, , , definition] = key.split(/[#/]/) as [string, string, string, string];
      const schema = (documents[document]!.definitions as Record<string, Schema>)[definition]!;
      const ahead = precompiled.validator(document, definition);
      const runtime = validator(document as 'messages' | 'ops', definition);
      for (const sample of samples(instance((raw) => resolve(document, raw), schema))) {
        const verdict = ahead(sample);
        assert.equal(verdict, runtime(sample), `${key} ${JSON.stringify(sample)}`);
        assert.deepEqual(seen(ahead.errors), seen(runtime.errors), `${key} ${JSON.stringify(sample)}`);
        if (verdict) valid++;
        checked++;
      }
    }
    // The samples reach past the first type check: many are valid, many more are not.
    assert.ok(valid > precompiled.keys.length / 2, `${valid} valid of ${checked}`);
    assert.ok(checked - valid > precompiled.keys.length * 5, `${checked - valid} invalid of ${checked}`);
  });
});
