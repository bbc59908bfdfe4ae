// Builds the agent CLI (and with it the agent) into one JavaScript file,
// dist/agent/cli.js, so `bin/snapsync-agent` starts without compiling
// TypeScript on every run. lmdb and koffi (native) stay external packages.
import { bundle } from './bundle.mjs';

// The NBD transmission thread's code (agent/nbd/relay/worker.mts) is loaded by file name, next to the agent.
await bundle({
  entry: 'agent/nbd/relay/worker.mts',
  outfile: 'dist/agent/nbd-relay-worker.js',
  external: ['koffi'],
  inputsFile: false,
});
await bundle({
  entry: 'agent/cli/main.ts',
  outfile: 'dist/agent/cli.js',
  external: ['lmdb', 'koffi'],
  extraInputs: ['agent/nbd/relay/worker.mts'],
});
