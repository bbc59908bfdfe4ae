/**
 * Schemas as the provider declares them, and their protocol forms: the cty
 * type of a block's object (to encode and decode its values) and the
 * tfplugin6 Schema message (GetProviderSchema).
 */
import type { CtyType } from './wire/cty';

export interface AttributeSpec {
  type: CtyType;
  description: string;
  required?: boolean;
  optional?: boolean;
  computed?: boolean;
  sensitive?: boolean;
  /** A nested attribute (protocol 6): a map of objects with attributes of their own. */
  nestedMap?: Record<string, AttributeSpec>;
}

/** A nested block of nesting SINGLE (`timeouts { … }`): null when absent from the configuration. */
export interface NestedBlockSpec {
  description: string;
  attributes: Record<string, AttributeSpec>;
}

export interface BlockSpec {
  version: number;
  description: string;
  attributes: Record<string, AttributeSpec>;
  blocks?: Record<string, NestedBlockSpec>;
}

export function attributeType(spec: AttributeSpec): CtyType {
  if (spec.nestedMap) {
    return [
      'map',
      ['object', Object.fromEntries(Object.entries(spec.nestedMap).map(([k, a]) => [k, attributeType(a)]))],
    ];
  }
  return spec.type;
}

export function objectType(block: BlockSpec | NestedBlockSpec): CtyType {
  const nested = 'blocks' in block ? Object.entries(block.blocks ?? {}) : [];
  return [
    'object',
    Object.fromEntries([
      ...Object.entries(block.attributes).map(([k, a]) => [k, attributeType(a)]),
      ...nested.map(([k, b]) => [k, objectType(b)]),
    ]),
  ];
}

const NESTING_MAP = 4;
const NESTING_SINGLE = 1;

function protoAttribute(name: string, spec: AttributeSpec): Record<string, unknown> {
  return {
    name,
    ...(spec.nestedMap
      ? {
          nested_type: {
            attributes: Object.entries(spec.nestedMap).map(([k, a]) => protoAttribute(k, a)),
            nesting: NESTING_MAP,
          },
        }
      : { type: Buffer.from(JSON.stringify(spec.type)) }),
    description: spec.description,
    required: spec.required === true,
    optional: spec.optional === true,
    computed: spec.computed === true,
    sensitive: spec.sensitive === true,
  };
}

/** The tfplugin6.Schema message for a block. */
export function protoSchema(block: BlockSpec): Record<string, unknown> {
  return {
    version: block.version,
    block: {
      version: block.version,
      description: block.description,
      attributes: Object.entries(block.attributes).map(([name, spec]) => protoAttribute(name, spec)),
      block_types: Object.entries(block.blocks ?? {}).map(([name, nested]) => ({
        type_name: name,
        nesting: NESTING_SINGLE,
        block: {
          version: block.version,
          description: nested.description,
          attributes: Object.entries(nested.attributes).map(([k, spec]) => protoAttribute(k, spec)),
          block_types: [],
        },
      })),
    },
  };
}
