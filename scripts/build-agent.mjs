// Builds the agent CLI (and with it the agent) into one JavaScript file,
// dist/agent/cli.js, so `bin/snapsync-agent` starts without compiling
// TypeScript on every run. lmdb (native) stays an external package.
// dist/agent/inputs.json lists the project sources the bundle was built from:
// the launcher runs the sources instead when one of them is newer.
import * as fs from 'node:fs';
import { build } from 'esbuild';

const result = await build({
  entryPoints: ['agent/cli/main.ts'],
  outfile: 'dist/agent/cli.js',
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node22',
  sourcemap: true,
  metafile: true,
  logLevel: 'warning',
  external: ['lmdb'],
  // yargs is ESM and asks for import.meta.url, which a CommonJS bundle lacks.
  define: { 'import.meta.url': '__importMetaUrl' },
  banner: { js: 'const __importMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
});
const inputs = Object.keys(result.metafile.inputs).filter((file) => !file.startsWith('node_modules/'));
fs.writeFileSync('dist/agent/inputs.json', `${JSON.stringify(inputs, null, 1)}\n`);
