/** The nightly GitHub Actions workflow of examples/refresh-staging: valid YAML, steps in an order that works. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

const WORKFLOW = path.resolve(
  __dirname,
  '../../examples/refresh-staging/.github/workflows/nightly-refresh.yml',
);
const yaml: { load(text: string): unknown } = require(
  require.resolve('js-yaml', { paths: [path.dirname(require.resolve('@pulumi/pulumi/package.json'))] }),
);

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  'working-directory'?: string;
}

describe('examples/refresh-staging nightly workflow', () => {
  const workflow = yaml.load(fs.readFileSync(WORKFLOW, 'utf8')) as {
    on: { schedule: Array<{ cron: string }> };
    jobs: { refresh: { steps: Step[]; env: Record<string, string> } };
  };
  const steps = workflow.jobs.refresh.steps;
  const index = (match: (s: Step) => boolean, what: string) => {
    const i = steps.findIndex(match);
    assert.ok(i >= 0, `a step that ${what}`);
    return i;
  };

  it('runs nightly and keeps the secrets in secrets', () => {
    assert.match(workflow.on.schedule[0]!.cron, /^\d+ \d+ \* \* \*$/);
    assert.match(workflow.jobs.refresh.env.PULUMI_CONFIG_PASSPHRASE!, /^\$\{\{ secrets\./);
    const tokenStep = steps.find((s) => s.run?.includes('snapsync:token'));
    assert.match(tokenStep!.run!, /config set --secret snapsync:token "\$\{\{ secrets\.SNAPSYNC_TOKEN \}\}"/);
  });

  it('builds the provider, names the dated snapshot, then previews and updates', () => {
    const install = index(
      (s) => /npm ci/.test(s.run ?? '') && /npm run build/.test(s.run ?? ''),
      'installs and builds',
    );
    const cli = index(
      (s) => s.uses?.startsWith('pulumi/actions@') === true && !s.with?.command,
      'installs the CLI',
    );
    const name = index(
      (s) => /config set snapshotName "nightly-\$\(date -u \+%F\)"/.test(s.run ?? ''),
      'names the snapshot',
    );
    const preview = index((s) => /pulumi preview/.test(s.run ?? ''), 'previews');
    const up = index((s) => /pulumi up --yes/.test(s.run ?? ''), 'updates');
    assert.ok(install < cli && cli < name && name < preview && preview < up, 'steps in that order');
    for (const step of steps.filter((s) => /pulumi /.test(s.run ?? ''))) {
      assert.equal(step['working-directory'], 'examples/refresh-staging', `${step.name} runs in the project`);
    }
  });
});
