/**
 * Loads the provider runtime inside the dynamic-provider plugin. This
 * function is what the serialized providers capture: a package path, nothing
 * else. The plugin resolves it from the Pulumi project's node_modules, where
 * `@snapsync/pulumi` is installed; SNAPSYNC_PROVIDER_RUNTIME points elsewhere (tests).
 */
import type * as Runtime from './runtime';

export function runtime(): typeof Runtime {
  return require(process.env.SNAPSYNC_PROVIDER_RUNTIME || '@snapsync/pulumi/dist/runtime.js');
}
