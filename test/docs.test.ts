/** The docs cannot drift from the code: every op and every error code is documented. */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ERROR_CODES as ENGINE_CODES } from '../agent/engine';
import { OP_NAMES } from '../schema';
import { ERROR_CODES } from '../schema/error-codes';

const root = path.resolve(__dirname, '..');
const protocol = fs.readFileSync(path.join(root, 'docs/protocol.md'), 'utf8');

describe('docs and generated types', () => {
  it('docs/protocol.md lists every operation and every error code', () => {
    for (const op of OP_NAMES) assert.ok(protocol.includes(`| \`${op}\` |`), `op ${op}`);
    for (const code of Object.keys(ERROR_CODES))
      assert.ok(protocol.includes(`| \`${code}\` |`), `code ${code}`);
  });

  it('every engine error code is a wire error code', () => {
    for (const code of ENGINE_CODES) assert.ok(code in ERROR_CODES, code);
  });

  it('schema/types.generated.ts matches the schemas', () => {
    execFileSync(process.execPath, ['scripts/gen-schema-types.mjs', '--check'], { cwd: root, stdio: 'pipe' });
  });
});
