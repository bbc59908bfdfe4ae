/**
 * The bundles validate with code ajv compiled ahead of time (scripts/schema-validators.mjs); the
 * sources compile at run time (schema/validators.ts). Both must give the same verdict and the
 * same errors (as a client sees them) for the same value: this runs each precompiled definition and its run-time twin
 * over values built from the schema itself (one of each declared type, every property filled,
 * then each broken in turn).
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import messages from '../../schema/protocol/messages.json';
import ops from '../../schema/protocol/ops.json';
import { validator } from '../../schema/validators';

const root = path.resolve(__dirname, '../..');

interface Precompiled {
  keys: string[];
  validator(schema: string, definition: string): ((value: unknown) => boolean) & { errors?: unknown };
}

function loadPrecompiled(): Precompiled {
  const out = execFileSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { precompiledKeys, precompiledValidatorsSource } from './scripts/schema-validators.mjs';
       process.stdout.write(JSON.stringify({ keys: precompiledKeys(), source: precompiledValidatorsSource() }));`,
    ],
    { cwd: root, maxBuffer: 64 << 20 },
  );
  const { keys, source } = JSON.parse(out.toString()) as { keys: string[]; source: string };
  const exports: Record<string, unknown> = {};
  new Function('exports', 'require', source)(exports, createRequire(path.join(root, 'package.json')));
  return { keys, validator: exports.validator as Precompiled['validator'] };
}

type Schema = Record<string, unknown>;
const documents: Record<string, Schema> = { messages, ops };

function resolve(document: string, schema: Schema): Schema {
  const ref = schema.$ref as string | undefined;
  if (!ref) return schema;
  const name = ref.split('/').pop()!;
  const definitions = documents[document]!.definitions as Record<string, Schema>;
  return resolve(document, definitions[name]!);
}

/** One plausible instance of a schema: its const, its first enum value, or a value of its type. */
function instance(document: string, raw: Schema, depth = 0): unknown {
  const schema = resolve(document, raw);
  if ('const' in schema) return schema.const;
  if (Array.isArray(schema.enum)) return schema.enum[0];
  const alternatives = (schema.oneOf ?? schema.anyOf) as Schema[] | undefined;
  if (alternatives?.length) return instance(document, alternatives[0]!, depth + 1);
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case 'string':
      return 'a'.repeat(Math.max(1, Number(schema.minLength ?? 1)));
    case 'integer':
    case 'number':
      return Number(schema.minimum ?? 1);
    case 'boolean':
      return true;
    case 'null':
      return null;
    case 'array':
      return depth > 6 || !schema.items ? [] : [instance(document, schema.items as Schema, depth + 1)];
    default: {
      const properties = (schema.properties ?? {}) as Record<string, Schema>;
      if (depth > 6) return {};
      return Object.fromEntries(
        Object.entries(properties).map(([name, property]) => [name, instance(document, property, depth + 1)]),
      );
    }
  }
}

/** The instance, then the instance with each top-level property replaced by a wrong type or dropped. */
function samples(value: unknown): unknown[] {
  const out: unknown[] = [value, null, 7, 'text', [], {}, { unexpected: true }];
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const name of Object.keys(value)) {
      const { [name]: _dropped, ...rest } = value as Record<string, unknown>;
      out.push(rest, { ...value, [name]: { wrong: [1] } }, { ...value, [name]: -1.5 });
    }
    out.push({ ...value, extra: 1 });
  }
  return out;
}

/** What an error tells a client (schemaPath, which differs with how refs were inlined, is not shown). */
function seen(errors: unknown): unknown {
  return ((errors ?? []) as Record<string, unknown>[]).map(({ instancePath, keyword, params, message }) => ({
    instancePath,
    keyword,
    params,
    message,
  }));
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
      for (const sample of samples(instance(document, schema))) {
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
