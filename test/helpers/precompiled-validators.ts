/**
 * Loads a module scripts/schema-validators.mjs writes for a bundle, as the bundle would run it:
 * `list` and `source` name two of that script's exports (the keys it covers, the module's source).
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import * as path from 'node:path';

const root = path.resolve(__dirname, '../..');

export function loadPrecompiledModule(
  list: string,
  source: string,
): { keys: string[]; exports: Record<string, unknown> } {
  const out = execFileSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { ${list}, ${source} } from './scripts/schema-validators.mjs';
       process.stdout.write(JSON.stringify({ keys: ${list}(), source: ${source}() }));`,
    ],
    { cwd: root, maxBuffer: 64 << 20 },
  );
  const parsed = JSON.parse(out.toString()) as { keys: string[]; source: string };
  const exports: Record<string, unknown> = {};
  new Function('exports', 'require', parsed.source)(exports, createRequire(path.join(root, 'package.json')));
  return { keys: parsed.keys, exports };
}
