// Builds the provider package's JavaScript (provider/dist): the resource classes
// that Pulumi programs import, and the runtime the dynamic-provider plugin loads.
// Both bundle the project's own TypeScript (schema/, the agent client);
// npm packages stay external.
import { build } from 'esbuild';
import { precompiledResourceValidators, precompiledValidators } from './schema-validators.mjs';

const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node22',
  sourcemap: true,
  logLevel: 'warning',
  external: ['@pulumi/pulumi', '@pulumi/pulumi/*', 'ws', 'ajv', 'ajv-formats'],
  // Validators compiled here, not by every `pulumi preview`/`up` (scripts/schema-validators.mjs).
  plugins: [precompiledValidators, precompiledResourceValidators],
};

await build({ ...common, entryPoints: ['provider/index.ts'], outfile: 'provider/dist/index.js' });
await build({ ...common, entryPoints: ['provider/runtime/index.ts'], outfile: 'provider/dist/runtime.js' });
