/**
 * The provider's bundle checks resource inputs with code ajv compiled ahead of time
 * (scripts/schema-validators.mjs); the sources compile at run time
 * (provider/runtime/resource-validators.ts). Both must give the same verdict and the same errors
 * (what `check` turns into a Pulumi CheckFailure) for the same inputs.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkInputs } from '../../provider/runtime/check';
import { type ResourceValidator, resourceValidator } from '../../provider/runtime/resource-validators';
import { loadPrecompiledModule } from '../helpers/precompiled-validators';
import { instance, type Schema, samples, seen } from '../helpers/schema-samples';

const root = path.resolve(__dirname, '../..');

function loadPrecompiled(): { names: string[]; resourceValidator(name: string): ResourceValidator } {
  const { keys, exports } = loadPrecompiledModule('resourceNames', 'precompiledResourceValidatorsSource');
  return { names: keys, resourceValidator: exports.resourceValidator as (name: string) => ResourceValidator };
}

/** Inputs a stack would declare: each valid. */
const DECLARED: Record<string, Record<string, unknown>> = {
  container: { name: 'web', type: 'vdisk', size: 20 * 2 ** 30, labels: { env: 'staging' } },
  snapshot: { container: 'web', name: 'nightly' },
  'sync-from-snapshot': { target: 'web-staging', snapshot: 'web@nightly' },
};

const schemaOf = (name: string): Schema =>
  JSON.parse(fs.readFileSync(path.join(root, 'schema', 'resources', `${name}.json`), 'utf8')) as Schema;

describe('provider resource validators: precompiled (bundle) and run-time (sources)', () => {
  const precompiled = loadPrecompiled();

  it('precompiles every resource of schema/resources, and only those', () => {
    assert.deepEqual(precompiled.names, ['container', 'snapshot', 'sync-from-snapshot']);
    assert.throws(() => precompiled.resourceValidator('volume'), /no resource schema volume/);
    assert.throws(() => resourceValidator('volume'), /no resource schema volume/);
  });

  it('give the same verdict and the same errors for every sample of every resource', () => {
    let valid = 0;
    let checked = 0;
    for (const name of precompiled.names) {
      const ahead = precompiled.resourceValidator(name);
      const runtime = resourceValidator(name);
      assert.equal(ahead(DECLARED[name]), true, `${name}: ${JSON.stringify(ahead.errors)}`);
      const built = samples(instance((schema) => schema, schemaOf(name)));
      for (const sample of [...built, ...samples(DECLARED[name])]) {
        const verdict = ahead(sample);
        assert.equal(verdict, runtime(sample), `${name} ${JSON.stringify(sample)}`);
        assert.deepEqual(seen(ahead.errors), seen(runtime.errors), `${name} ${JSON.stringify(sample)}`);
        if (verdict) valid++;
        checked++;
      }
    }
    // Each resource's declared inputs are valid (both say so), the broken ones are not.
    assert.ok(valid >= precompiled.names.length, `${valid} valid of ${checked}`);
    assert.ok(checked - valid > precompiled.names.length * 10, `${checked - valid} invalid of ${checked}`);
  });

  it('check names each bad property once, as a user sees it in pulumi preview', () => {
    const failures = checkInputs('container', { name: 'web', type: 'disk', size: -1 });
    assert.deepEqual(
      failures.map((f) => f.property),
      ['type', 'size'],
    );
    assert.match(failures[0]!.reason, /^type must be equal to one of the allowed values/);
    assert.deepEqual(checkInputs('snapshot', { container: 'web', name: 'nightly' }), []);
  });
});
