/** Identity profiles: what a sync must not take from the source, per container type and format. */

export { detectFormat } from './config-format';
export { crc32 } from './crc32';
export { guidFromString, guidToString } from './guid';
export { createIdentityHooks, type IdentityField, type IdentityReport } from './hooks';
export type { Preserve } from './preserve';
