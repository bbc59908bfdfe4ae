// Builds the agent CLI (and with it the agent) into one JavaScript file,
// dist/agent/cli.js, so `bin/snapsync-agent` starts without compiling
// TypeScript on every run. lmdb and koffi (native) stay external packages.
import { bundle } from './bundle.mjs';

await bundle({ entry: 'agent/cli/main.ts', outfile: 'dist/agent/cli.js', external: ['lmdb', 'koffi'] });
