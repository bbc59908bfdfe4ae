// One esbuild bundle of a Node entry point (CommonJS, Node 22), with its
// inputs.json next to it: the project sources it was built from, which the
// launcher (bin/launcher.js) checks so a stale bundle is never run.
// Used by build-agent.mjs and build-terraform-provider.mjs.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { build } from 'esbuild';

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
    // ESM packages (yargs) ask for import.meta.url, which a CommonJS bundle lacks.
    define: { 'import.meta.url': '__importMetaUrl' },
    banner: { js: 'const __importMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
  });
  if (!inputsFile) return;
  const inputs = Object.keys(result.metafile.inputs).filter((file) => !file.startsWith('node_modules/'));
  fs.writeFileSync(
    path.join(path.dirname(outfile), 'inputs.json'),
    `${JSON.stringify([...inputs, ...extraInputs], null, 1)}\n`,
  );
}
