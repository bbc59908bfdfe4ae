/**
 * Progress of long operations when stderr is not a terminal (a cron job, a
 * CI log): `import` and `export` print a line every SNAPSYNC_PROGRESS_INTERVAL
 * seconds (default 10) instead of nothing until they end; with --json stderr
 * stays quiet and stdout is the result alone.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { cleanupTempDirs } from '../helpers/tmp';

const BIN = path.resolve(__dirname, '../../bin/snapsync-agent');

describe('snapsync-agent progress lines off a terminal', function () {
  this.timeout(60_000);
  let agent: AgentProcess;
  before(async () => {
    agent = await startAgentProcess();
  });
  after(async () => {
    await agent.stop();
    cleanupTempDirs();
  });

  const cli = (args: string[]) =>
    spawnSync(process.execPath, [BIN, ...args], {
      encoding: 'utf8',
      env: {
        ...process.env,
        SNAPSYNC_URL: agent.url,
        SNAPSYNC_TOKEN: agent.token,
        SNAPSYNC_PROGRESS_INTERVAL: '0',
      },
    });

  it('import and export print percentage lines on stderr; --json prints none', () => {
    const image = path.join(agent.dir, 'image.raw');
    fs.writeFileSync(image, Buffer.alloc(32 * 1024 * 1024, 7));
    const imported = cli(['import', image, 'disk', '--create']);
    assert.equal(imported.status, 0, imported.stderr);
    const lines = imported.stderr.trim().split('\n');
    assert.ok(lines.length >= 2, `progress lines: ${imported.stderr}`);
    for (const line of lines) assert.match(line, /^import: \d+% \(\d+(\.\d+)? [KMG]?i?B of 32\.0 MiB\)$/);
    assert.match(imported.stdout, /^imported 32\.0 MiB into disk/);

    const exported = cli(['export', 'disk', path.join(agent.dir, 'out.raw')]);
    assert.equal(exported.status, 0, exported.stderr);
    assert.match(exported.stderr, /^export: \d+% \(/m);

    const quiet = cli(['export', 'disk', path.join(agent.dir, 'out2.raw'), '--json']);
    assert.equal(quiet.status, 0, quiet.stderr);
    assert.equal(quiet.stderr, '');
    assert.equal(JSON.parse(quiet.stdout).container, 'disk');
  });
});
