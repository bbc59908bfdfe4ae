/** Input handling shared by the resources: unknowns during preview, and plain-value comparisons. */
import type * as dynamic from '@pulumi/pulumi/dynamic';
import { stableJson } from '../../schema/stable-json';

/** The value Pulumi puts in place of an input not known yet (preview). */
export const UNKNOWN = '04da6b54-80e4-46f7-96ec-b56ff0331ba9';

export function isUnknown(value: unknown): boolean {
  if (value === UNKNOWN) return true;
  if (Array.isArray(value)) return value.some(isUnknown);
  if (value && typeof value === 'object') return Object.values(value).some(isUnknown);
  return false;
}

export function changed(olds: Record<string, unknown>, news: Record<string, unknown>, key: string): boolean {
  return isUnknown(news[key]) || stableJson(olds[key]) !== stableJson(news[key]);
}

/** Which of `keys` differ between olds and news. */
export function changedKeys(
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
  keys: string[],
): string[] {
  return keys.filter((k) => changed(olds, news, k));
}

/**
 * A read's answer without undefined fields: the plugin turns Read results
 * into protobuf Structs, which reject undefined (unlike Create/Update outputs).
 */
export function readResult(id: string, props?: object, inputs?: object): dynamic.ReadResult {
  const plain = (o: object) => JSON.parse(JSON.stringify(o)) as Record<string, unknown>;
  return {
    id,
    ...(props === undefined ? {} : { props: plain(props) }),
    ...(inputs === undefined ? {} : { inputs: plain(inputs) }),
  };
}
