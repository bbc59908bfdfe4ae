// One esbuild bundle of a Node entry point (CommonJS, Node 22), with its
// inputs.json next to it: the project sources it was built from, which the
// launcher (bin/launcher.js) checks so a stale bundle is never run.
// Used by build-agent.mjs and build-terraform-provider.mjs. The protocol's validators
// are compiled in ahead of time (schema-validators.mjs).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { build } from 'esbuild';
import { PRECOMPILED_FROM, PRECOMPILED_NAMESPACE, precompiledValidators } from './schema-validators.mjs';

/**
 * @param {{ entry: string, outfile: string, external?: string[], extraInputs?: string[], inputsFile?: boolean }} options
 *   extraInputs: files the bundle reads at run time rather than imports (checked for staleness too).
 *   inputsFile: false for a second bundle loaded by the first (its sources go in the first's extraInputs).
 */
export async function bundle({ entry, outfile, external = [], extraInputs = [], inputsFile = true }) {
  const result = await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node22',
    sourcemap: true,
    metafile: true,
    logLevel: 'warning',
    external,
    plugins: [precompiledValidators],
    // ESM packages (yargs) ask for import.meta.url, which a CommonJS bundle lacks.
    define: { 'import.meta.url': '__importMetaUrl' },
    banner: { js: 'const __importMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
  });
  if (!inputsFile) return;
  const inputs = new Set();
  for (const file of Object.keys(result.metafile.inputs)) {
    if (file.startsWith(`${PRECOMPILED_NAMESPACE}:`)) for (const from of PRECOMPILED_FROM) inputs.add(from);
    else if (!file.startsWith('node_modules/')) inputs.add(file);
  }
  fs.writeFileSync(
    path.join(path.dirname(outfile), 'inputs.json'),
    `${JSON.stringify([...inputs, ...extraInputs], null, 1)}\n`,
  );
}
