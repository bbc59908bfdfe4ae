// Declarations for the published @snapsync/pulumi (provider/dist/*.d.ts): the public API only
// (index.ts and the resource files), which imports nothing but @pulumi/pulumi, so a consumer's
// default tsconfig type-checks it (no resolveJsonModule, no sources of schema/ or agent/).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, '.tmp/provider-types');
fs.rmSync(out, { recursive: true, force: true });
execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'provider/tsconfig.types.json'], {
  cwd: root,
  stdio: 'inherit',
});
const PUBLIC = ['index', 'container', 'snapshot', 'sync-from-snapshot'];
for (const name of PUBLIC) {
  const text = fs.readFileSync(path.join(out, 'provider', `${name}.d.ts`), 'utf8');
  // Only the package's own files and @pulumi/pulumi may be named: anything else would not resolve.
  for (const [, spec] of text.matchAll(/from '([^']+)'/g)) {
    if (spec !== '@pulumi/pulumi' && !PUBLIC.some((p) => spec === `./${p}`)) {
      throw new Error(`provider/${name}.d.ts imports ${spec}, which the package does not ship`);
    }
  }
  fs.writeFileSync(path.join(root, 'provider/dist', `${name}.d.ts`), text);
}
