/**
 * examples/refresh-staging as an ordinary Pulumi project, as a user runs it:
 * a directory outside the repository with its Pulumi.yaml (runtime nodejs),
 * `@snapsync/pulumi` installed from its `npm pack` tarball, the real CLI
 * (SNAPSYNC_PULUMI) and the real nodejs language host
 * (SNAPSYNC_PULUMI_LANGUAGE_NODEJS, built by
 * scripts/build-pulumi-language-nodejs.sh), `pulumi preview`/`up`/`destroy`
 * run in the directory, against a real agent. Also: a preview with a wrong
 * token fails with one coded line and the hint (issue 14), and destroy/up
 * cycles with identical inputs create what they report (issue 11 item 6).
 */
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AgentClient } from '../../agent/client/client';
import { findPulumiCli } from '../../examples/demo/pulumi-stack';
import { type AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const REPO = path.resolve(__dirname, '../..');
const EXAMPLE = path.join(REPO, 'examples/refresh-staging');
const MiB = 1 << 20;

/** The language host: SNAPSYNC_PULUMI_LANGUAGE_NODEJS, else the build script's cached binary (it builds once). */
function languageHost(): string {
  const named = process.env.SNAPSYNC_PULUMI_LANGUAGE_NODEJS;
  if (named) return path.resolve(named);
  const out = execFileSync('bash', ['scripts/build-pulumi-language-nodejs.sh'], {
    cwd: REPO,
    encoding: 'utf8',
  });
  return out.trim().split('\n').pop()!;
}

describe('pulumi CLI in a project directory: examples/refresh-staging from the npm pack tarball', function () {
  this.timeout(900_000);
  const pulumi = findPulumiCli();
  let agent: AgentProcess;
  let admin: AgentClient;
  let project: string;
  let env: NodeJS.ProcessEnv;
  const transcript: string[] = [];

  /** Runs `pulumi …` in the project directory; returns status and output. */
  function run(...args: string[]) {
    const r = spawnSync(pulumi!, [...args, '--non-interactive'], { cwd: project, env, encoding: 'utf8' });
    transcript.push(r.stdout, r.stderr);
    return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
  }
  function ok(...args: string[]): string {
    const r = run(...args);
    assert.equal(r.status, 0, `pulumi ${args.join(' ')} failed:\n${r.out}`);
    return r.out;
  }
  const snapsyncContainers = async () => (await admin.call('listContainers', {})).map((c) => c.name).sort();

  before(async () => {
    assert.ok(pulumi, 'no Pulumi CLI: run `make e2e` (it builds one) or set SNAPSYNC_PULUMI');
    const host = languageHost();
    agent = await startAgentProcess();
    admin = await AgentClient.connect(agent.url, { token: agent.token });

    // The package as it is published: npm pack (its prepack builds JS and types).
    const packDir = tempDir('snapsync-pack-');
    execFileSync('npm', ['pack', '--pack-destination', packDir], {
      cwd: path.join(REPO, 'provider'),
      stdio: 'ignore',
    });
    const tarball = path.join(packDir, fs.readdirSync(packDir).find((f) => f.endsWith('.tgz'))!);

    // An ordinary project directory outside the repository.
    project = tempDir('snapsync-project-');
    for (const file of ['Pulumi.yaml', 'index.ts', 'tsconfig.json']) {
      fs.copyFileSync(path.join(EXAMPLE, file), path.join(project, file));
    }
    const pkg = JSON.parse(fs.readFileSync(path.join(EXAMPLE, 'package.json'), 'utf8'));
    pkg.dependencies['@snapsync/pulumi'] = `file:${tarball}`;
    pkg.devDependencies = { typescript: '5.9.3', '@types/node': '24.9.0' };
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify(pkg, null, 2));
    execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], {
      cwd: project,
      stdio: 'ignore',
    });
    assert.ok(
      !fs.existsSync(path.join(project, 'node_modules/@snapsync/pulumi/node_modules/@pulumi/pulumi')),
      'one @pulumi/pulumi: the project’s (a peer dependency)',
    );

    env = {
      ...process.env,
      PULUMI_BACKEND_URL: `file://${path.join(project, '.state')}`,
      PULUMI_CONFIG_PASSPHRASE: `e2e-${process.pid}`,
      PULUMI_HOME: path.join(project, '.pulumi-home'),
      PULUMI_SKIP_UPDATE_CHECK: 'true',
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: 'true',
      // node (24) for the language host and the plugin, the language host, and the dynamic-provider plugin.
      PATH: [
        path.dirname(process.execPath),
        path.dirname(host),
        path.join(project, 'node_modules/@pulumi/pulumi'),
        process.env.PATH ?? '',
      ].join(path.delimiter),
    };
    fs.mkdirSync(path.join(project, '.state'));
    ok('stack', 'init', 'dev');
    ok('config', 'set', 'snapsync:url', agent.url);
    ok('config', 'set', 'snapshotName', 'nightly-1');
    ok('config', 'set', 'diskSize', String(4 * MiB));
  });
  after(async () => {
    await admin?.close();
    await agent?.stop();
    cleanupTempDirs();
  });

  it('preview with a wrong token fails: one coded line with the hint, no stack trace', () => {
    ok('config', 'set', '--secret', 'snapsync:token', 'not-the-token');
    const preview = run('preview');
    assert.notEqual(preview.status, 0, preview.out);
    assert.match(preview.out, /\[UNAUTHORIZED\] agent refused the connection: HTTP 401/);
    assert.match(preview.out, /pulumi config set --secret snapsync:token/);
    assert.doesNotMatch(preview.out, /\n\s+at .*\(.*:\d+:\d+\)/, 'no stack trace');
  });

  it('up in the directory converges after fixing the token; a no-change preview; destroy', async () => {
    ok('config', 'set', '--secret', 'snapsync:token', agent.token);
    // A first preview: the sync's snapshot is an output of a snapshot not taken yet, so it says
    // the sync was not checked rather than pretending it was.
    const first = ok('preview');
    assert.match(
      first,
      /snapsync: sync "staging-web" not checked against the agent in this preview: snapshot not known yet/,
    );
    ok('up', '--yes', '--skip-preview');
    assert.deepEqual(await snapsyncContainers(), [
      'prod-web',
      'prod-web-config',
      'prod-web-disk0',
      'prod-web-disk1',
      'staging-web',
      'staging-web-config',
      'staging-web-disk0',
      'staging-web-disk1',
    ]);
    ok('preview', '--expect-no-changes');
    const outputs = JSON.parse(ok('stack', 'output', '--json'));
    assert.equal(outputs.syncedFrom, 'prod-web@nightly-1');
    assert.equal(outputs.generation, 1);
    ok('destroy', '--yes', '--skip-preview');
    assert.deepEqual(await snapsyncContainers(), []);
  });

  it('destroy/up cycles with identical inputs create what they report (issue 11 item 6)', async () => {
    for (let cycle = 1; cycle <= 3; cycle++) {
      ok('up', '--yes', '--skip-preview');
      const state = JSON.parse(ok('stack', 'export'));
      const containers = state.deployment.resources.filter((r: { type: string }) =>
        r.type.endsWith('snapsync:Container'),
      );
      assert.equal(containers.length, 8);
      for (const r of containers as Array<{ id: string; outputs: { name: string } }>) {
        const live = await admin.call('describe', { container: r.outputs.name }).catch(() => null);
        assert.equal(live?.uuid, r.id, `cycle ${cycle}: ${r.outputs.name} in state is on the agent`);
      }
      ok('destroy', '--yes', '--skip-preview');
      assert.deepEqual(await snapsyncContainers(), [], `cycle ${cycle}: destroy leaves nothing`);
    }
  });

  it('nothing the CLI printed carries the token', () => {
    for (const text of transcript) assert.ok(!text.includes(agent.token));
  });
});
