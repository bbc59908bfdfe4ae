// Compiles the protocol's JSON Schemas (schema/protocol) into standalone validator code ahead of
// time (ajv's standalone mode), with the options of schema/ajv-options.json. The bundles
// (scripts/bundle.mjs) put this module where schema/validators.ts would be, so a CLI start does
// not compile schemas. Precompiled: every definition of messages.json and every op's params and
// result (what schema/index.ts validates); CommonJS, exporting validator(schema, definition).
import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv from 'ajv';
import standaloneCode from 'ajv/dist/standalone/index.js';

const read = (file) => JSON.parse(fs.readFileSync(new URL(`../schema/${file}`, import.meta.url), 'utf8'));

/** The keys (`messages#/definitions/Request`, …) this module precompiles. */
export function precompiledKeys() {
  const messages = read('protocol/messages.json');
  const opTable = read('protocol/op-table.json');
  const keys = new Set(Object.keys(messages.definitions).map((name) => `messages#/definitions/${name}`));
  for (const { params, result } of Object.values(opTable)) {
    keys.add(`ops#/definitions/${params}`);
    keys.add(`ops#/definitions/${result}`);
  }
  return [...keys];
}

/** The module's CommonJS source. inlineRefs off: shared definitions are one function, not copies (size). */
export function precompiledValidatorsSource() {
  const ajv = new Ajv({ ...read('ajv-options.json'), inlineRefs: false, code: { source: true, lines: false } });
  ajv.addSchema(read('protocol/messages.json'), 'messages');
  ajv.addSchema(read('protocol/ops.json'), 'ops');
  const keys = precompiledKeys();
  const refs = Object.fromEntries(keys.map((key, i) => [`v${i}`, key]));
  const table = keys.map((key, i) => `${JSON.stringify(key)}: exports.v${i}`).join(',\n');
  return `${standaloneCode(ajv, refs)}
const precompiled = {
${table}
};
exports.validator = function validator(schema, definition) {
  const key = schema + '#/definitions/' + definition;
  const validate = precompiled[key];
  if (!validate) throw new Error('no precompiled schema ' + key);
  return validate;
};
`;
}

/** The files the module is made from (a bundle that holds it is stale when one is newer). */
export const PRECOMPILED_FROM = [
  'schema/ajv-options.json',
  'schema/protocol/messages.json',
  'schema/protocol/ops.json',
  'schema/protocol/op-table.json',
  'scripts/schema-validators.mjs',
];

/** The esbuild namespace of the module (its metafile input is `precompiled-validators:validators`). */
export const PRECOMPILED_NAMESPACE = 'precompiled-validators';

/** An esbuild plugin: schema/validators.ts becomes the precompiled module. */
export const precompiledValidators = {
  name: 'precompiled-validators',
  setup(build) {
    build.onResolve({ filter: /^\.\/validators$/ }, (args) =>
      args.importer.endsWith(path.join('schema', 'index.ts'))
        ? { path: 'validators', namespace: PRECOMPILED_NAMESPACE }
        : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: PRECOMPILED_NAMESPACE }, () => ({
      contents: precompiledValidatorsSource(),
      loader: 'js',
      resolveDir: new URL('..', import.meta.url).pathname,
    }));
  },
};

/**
 * The resources' input validators (schema/resources/<name>.json, options of
 * schema/resource-ajv-options.json) as one CommonJS module exporting resourceValidator(name):
 * what provider/runtime/resource-validators.ts compiles at run time.
 */
export function precompiledResourceValidatorsSource() {
  const names = resourceNames();
  const ajv = new Ajv({ ...read('resource-ajv-options.json'), code: { source: true, lines: false } });
  for (const name of names) ajv.addSchema(read(`resources/${name}.json`), name);
  const refs = Object.fromEntries(names.map((name, i) => [`r${i}`, name]));
  const table = names.map((name, i) => `${JSON.stringify(name)}: exports.r${i}`).join(',\n');
  return `${standaloneCode(ajv, refs)}
const precompiled = {
${table}
};
exports.resourceValidator = function resourceValidator(name) {
  const validate = precompiled[name];
  if (!validate) throw new Error('no resource schema ' + name);
  return validate;
};
`;
}

/** The resources with an input schema: schema/resources/<name>.json. */
export function resourceNames() {
  return fs
    .readdirSync(new URL('../schema/resources', import.meta.url))
    .filter((file) => file.endsWith('.json'))
    .map((file) => file.slice(0, -'.json'.length))
    .sort();
}

/** An esbuild plugin: provider/runtime/resource-validators.ts becomes the precompiled module. */
export const precompiledResourceValidators = {
  name: 'precompiled-resource-validators',
  setup(build) {
    build.onResolve({ filter: /^\.\/resource-validators$/ }, (args) =>
      args.importer.endsWith(path.join('provider', 'runtime', 'check.ts'))
        ? { path: 'resource-validators', namespace: 'precompiled-resource-validators' }
        : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'precompiled-resource-validators' }, () => ({
      contents: precompiledResourceValidatorsSource(),
      loader: 'js',
      resolveDir: new URL('..', import.meta.url).pathname,
    }));
  },
};
