/** Identity profiles: what a sync must not take from the source, per container type and format. */

export { CONFIG_FORMATS, type ConfigFormat, detectFormat, FORMAT_LABEL, parseConfig } from './config-format';
export { crc32 } from './crc32';
export type { FieldValue, IdentityWarning, WarningCode } from './fields';
export { readGpt } from './gpt';
export { guidFromString, guidToString, isGuid } from './guid';
export { type Captured, createIdentityHooks, MAX_CONFIG_BYTES, type ReferenceOptions } from './hooks';
export { type Preserve, preserveFilter } from './preserve';
export type { IdentityField, IdentityReference, IdentityReport } from './report';
export { replaceSpans, type ValueSpan } from './spans';
