/**
 * Values built from a JSON Schema to hold two validators of it to the same verdicts
 * (test/schema/validators.test.ts, test/provider/resource-validators.test.ts): one plausible
 * instance, then that instance broken in turn.
 */
export type Schema = Record<string, unknown>;

/** How a `$ref` is followed (the identity for a schema without refs). */
export type RefResolver = (schema: Schema) => Schema;

/** One plausible instance of a schema: its const, its first enum value, or a value of its type. */
export function instance(resolve: RefResolver, raw: Schema, depth = 0): unknown {
  const schema = resolve(raw);
  if ('const' in schema) return schema.const;
  if (Array.isArray(schema.enum)) return schema.enum[0];
  const alternatives = (schema.oneOf ?? schema.anyOf) as Schema[] | undefined;
  if (alternatives?.length) return instance(resolve, alternatives[0]!, depth + 1);
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
      return depth > 6 || !schema.items ? [] : [instance(resolve, schema.items as Schema, depth + 1)];
    default: {
      const properties = (schema.properties ?? {}) as Record<string, Schema>;
      if (depth > 6) return {};
      return Object.fromEntries(
        Object.entries(properties).map(([name, property]) => [name, instance(resolve, property, depth + 1)]),
      );
    }
  }
}

/** The instance, then the instance with each top-level property replaced by a wrong type or dropped. */
export function samples(value: unknown): unknown[] {
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
export function seen(errors: unknown): unknown {
  return ((errors ?? []) as Record<string, unknown>[]).map(({ instancePath, keyword, params, message }) => ({
    instancePath,
    keyword,
    params,
    message,
  }));
}
