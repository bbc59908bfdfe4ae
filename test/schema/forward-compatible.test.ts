/**
 * A client reads a newer agent's replies: properties it does not know are
 * dropped, everything it knows is still checked (schema/forward-compatible.ts).
 */
import * as assert from 'node:assert/strict';
import { acceptReply, acceptResult, checkResult, OP_NAMES } from '../../schema';
import messages from '../../schema/protocol/messages.json';
import opTable from '../../schema/protocol/op-table.json';
import ops from '../../schema/protocol/ops.json';
import { instance, type Schema } from '../helpers/schema-samples';

const documents: Record<string, Schema> = { messages, ops };

function resolver(document: string) {
  const resolve = (schema: Schema): Schema => {
    const ref = schema.$ref as string | undefined;
    if (!ref) return schema;
    const definitions = documents[document]!.definitions as Record<string, Schema>;
    return resolve(definitions[ref.split('/').pop()!]!);
  };
  return resolve;
}

/** Whether a value of this schema may be a JSON object. */
function mayBeObject(resolve: (s: Schema) => Schema, raw: Schema): boolean {
  const schema = resolve(raw);
  const alternatives = (schema.oneOf ?? schema.anyOf) as Schema[] | undefined;
  if (alternatives) return alternatives.some((a) => mayBeObject(resolve, a));
  if ('const' in schema || 'enum' in schema) return false;
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  return schema.type === undefined || types.includes('object');
}

/** Every oneOf/anyOf reachable from a definition, as [path, branches]. */
function alternativesIn(resolve: (s: Schema) => Schema, raw: Schema, path: string, seen = new Set<Schema>()) {
  const found: Array<[string, Schema[]]> = [];
  const schema = resolve(raw);
  if (seen.has(schema)) return found;
  seen.add(schema);
  const alternatives = (schema.oneOf ?? schema.anyOf) as Schema[] | undefined;
  if (alternatives) {
    found.push([path, alternatives]);
    alternatives.forEach((a, i) => {
      found.push(...alternativesIn(resolve, a, `${path}/oneOf/${i}`, seen));
    });
  }
  for (const [name, property] of Object.entries((schema.properties ?? {}) as Record<string, Schema>))
    found.push(...alternativesIn(resolve, property, `${path}/${name}`, seen));
  for (const key of ['items', 'additionalProperties'] as const) {
    const nested = schema[key];
    if (nested && typeof nested === 'object')
      found.push(...alternativesIn(resolve, nested as Schema, `${path}/${key}`, seen));
  }
  return found;
}

/** Adds `futureField` to the value and to every object under it that has declared properties. */
function withFutureFields(resolve: (s: Schema) => Schema, raw: Schema, value: unknown): unknown {
  const schema = resolve(raw);
  const alternatives = (schema.oneOf ?? schema.anyOf) as Schema[] | undefined;
  if (alternatives) {
    const branch = alternatives.find((a) => mayBeObject(resolve, a));
    return branch && value !== null && typeof value === 'object'
      ? withFutureFields(resolve, branch, value)
      : value;
  }
  if (Array.isArray(value))
    return value.map((item) =>
      schema.items ? withFutureFields(resolve, schema.items as Schema, item) : item,
    );
  if (value === null || typeof value !== 'object' || !schema.properties) return value;
  const properties = schema.properties as Record<string, Schema>;
  const out: Record<string, unknown> = { futureField: { added: 'by a newer agent', list: [1, 2] } };
  for (const [name, field] of Object.entries(value as Record<string, unknown>))
    out[name] = properties[name] ? withFutureFields(resolve, properties[name]!, field) : field;
  return out;
}

const resultSchema = (op: string): Schema => ({
  $ref: `#/definitions/${(opTable as Record<string, { result: string }>)[op]!.result}`,
});

describe('forward-compatible replies (a client reading a newer agent)', () => {
  it('no oneOf/anyOf in a reply has two branches that may be objects (dropping unknown properties relies on it)', () => {
    const roots: Array<[string, Schema]> = [
      ...OP_NAMES.map((op) => [`ops:${op}`, resultSchema(op)] as [string, Schema]),
      ...['Ok', 'Failure', 'Progress', 'HelloResult'].map(
        (d) => [`messages:${d}`, { $ref: `#/definitions/${d}` }] as [string, Schema],
      ),
    ];
    const offending: string[] = [];
    for (const [root, schema] of roots) {
      const resolve = resolver(root.split(':')[0]!);
      for (const [path, branches] of alternativesIn(resolve, schema, root))
        if (branches.filter((b) => mayBeObject(resolve, b)).length > 1) offending.push(path);
    }
    assert.deepEqual(offending, []);
  });

  for (const op of OP_NAMES) {
    it(`${op}: a result with properties this client does not know, at every level, is accepted as the known part`, () => {
      const resolve = resolver('ops');
      const known = instance(resolve, resultSchema(op));
      assert.deepEqual(checkResult(op, known), [], 'the sample is a valid result');
      const newer = withFutureFields(resolve, resultSchema(op), structuredClone(known));
      assert.notDeepEqual(newer, known);
      assert.ok(checkResult(op, newer).length > 0, 'the strict check (the agent’s own) refuses it');
      assert.deepEqual(acceptResult(op, newer), []);
      assert.deepEqual(newer, known, 'what is left is exactly what this client knows');
    });
  }

  it('a known property of the wrong type is still refused, unknown ones beside it or not', () => {
    const valid = instance(resolver('ops'), resultSchema('listContainers')) as Array<Record<string, unknown>>;
    const result = [{ ...valid[0], name: 7, futureField: 1 }];
    const problems = acceptResult('listContainers', result);
    assert.deepEqual(problems, [{ path: '/result/0/name', message: 'must be string' }]);
  });

  it('reply envelopes: unknown fields of ok, failure and progress replies are dropped; a bad kind is refused', () => {
    const ok = { v: 1, id: '1', ok: true, result: { a: 1 }, servedBy: 'agent/9' };
    assert.deepEqual(acceptReply(ok), []);
    assert.deepEqual(ok, { v: 1, id: '1', ok: true, result: { a: 1 } });
    const failure = {
      v: 1,
      id: '2',
      ok: false,
      error: { code: 'NOT_FOUND', message: 'no', details: { name: 'x' }, hint: 'new' },
      traceId: 'abc',
    };
    assert.deepEqual(acceptReply(failure), []);
    assert.deepEqual(failure, {
      v: 1,
      id: '2',
      ok: false,
      error: { code: 'NOT_FOUND', message: 'no', details: { name: 'x' } },
    });
    const progress = { v: 1, id: '3', event: 'progress', done: 1, total: 2, phase: 'copy' };
    assert.deepEqual(acceptReply(progress), []);
    assert.deepEqual(progress, { v: 1, id: '3', event: 'progress', done: 1, total: 2 });
    assert.ok(acceptReply({ v: 1, id: '4', ok: 'yes', result: {} }).length > 0);
    assert.ok(acceptReply({ v: 2, id: '5', ok: true, result: {} }).length > 0);
    assert.ok(
      acceptReply({ v: 1, id: '6', ok: false, error: { code: 'lower', message: '', details: {} } }).length >
        0,
    );
  });
});
