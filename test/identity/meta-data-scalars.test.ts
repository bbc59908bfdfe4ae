/**
 * NoCloud meta-data whose instance-id and names are valid YAML scalars in their other forms (on the
 * next line, a one-line `>-`/`|` block, `!!str`-tagged, `&anchored`), after a whole-VM sync in a real
 * pool: staging keeps its own, as cloud-init (PyYAML's safe_load) reads them.
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { Pool } from '../../agent/engine';
import { createIdentityHooks, type IdentityReport } from '../../agent/identity';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { addConfig, readText } from './helpers/pool';
import { run } from './helpers/tools';

/** The meta-data as cloud-init reads it. */
const load = (text: string): Record<string, unknown> =>
  JSON.parse(
    run('python3', ['-c', 'import json,sys,yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())))'], text)
      .stdout,
  );

const PRODUCTION_FORMS = [
  'instance-id:',
  '  iid-pweb07',
  'local-hostname: >-',
  '  pweb07',
  'hostname: !!str pweb07.corp.example',
  'fqdn: &f pweb07.corp.example',
  '',
].join('\n');
const PRODUCTION_PLAIN =
  'instance-id: iid-pweb07\nlocal-hostname: pweb07\nhostname: pweb07.corp.example\nfqdn: "pweb07.corp.example"\n';
const STAGING_PLAIN =
  'instance-id: iid-stage-app-07\nlocal-hostname: stage-app-07\nhostname: stage-app-07.stg.example\nfqdn: stage-app-07.stg.example\n';
const STAGING_VALUES = {
  'instance-id': 'iid-stage-app-07',
  'local-hostname': 'stage-app-07',
  hostname: 'stage-app-07.stg.example',
  fqdn: 'stage-app-07.stg.example',
};

describe('identity: NoCloud meta-data scalars on the next line, in a block, tagged or anchored', function () {
  this.timeout(60_000);
  after(cleanupTempDirs);
  let pool: Pool;
  beforeEach(() => {
    pool = Pool.create(path.join(tempDir('snapsync-md-scalars-'), 'pool'), { blockSize: 4096 });
  });
  afterEach(() => pool.close());

  const sync = (staging: string, production: string) => {
    for (const [name, text] of [
      ['prod', production],
      ['stage', staging],
    ] as const) {
      pool.createContainer({ name, type: 'vm' });
      addConfig(pool, name, 'meta', text);
    }
    pool.snapshot('prod', 'nightly');
    const report = pool.sync('stage', 'prod@nightly', { hooks: createIdentityHooks() })
      .identity as IdentityReport;
    return { report, text: readText(pool, 'stage-meta') };
  };
  const warnings = (report: IdentityReport) => report.warnings.map((w) => [w.path, w.code]);
  /** A second sync in a pool of its own. */
  const syncAgain = (staging: string, production: string) => {
    pool.close();
    pool = Pool.create(path.join(tempDir('snapsync-md-scalars-'), 'pool'), { blockSize: 4096 });
    return sync(staging, production);
  };

  it("production's next-line, folded, !!str and &anchored values: staging keeps its own (tag and anchor kept)", () => {
    const { report, text } = sync(STAGING_PLAIN, PRODUCTION_FORMS);
    assert.deepEqual(warnings(report), []);
    assert.deepEqual(load(text), STAGING_VALUES, text);
    assert.match(text, /^hostname: !!str stage-app-07\.stg\.example$/m);
    assert.match(text, /^fqdn: &f stage-app-07\.stg\.example$/m);
    assert.ok(!text.includes('pweb07'), text);
  });

  it("staging's own in those forms: written in production's places, quoted where plain would not read back", () => {
    const staging = [
      'instance-id:',
      '  "iid-stage-app-07"',
      'local-hostname: |',
      '  yes',
      'hostname: &h !!str stage-app-07.stg.example # ours',
      'fqdn: !!str',
      '  stage-app-07.stg.example',
      '',
    ].join('\n');
    const { report, text } = sync(staging, PRODUCTION_PLAIN);
    assert.deepEqual(warnings(report), []);
    assert.deepEqual(load(text), { ...STAGING_VALUES, 'local-hostname': 'yes' }, text);
    assert.match(text, /^local-hostname: "yes"$/m);

    // and back: a value quoted in staging goes into production's block line as its text
    const back = syncAgain(
      STAGING_PLAIN.replace('local-hostname: stage-app-07', 'local-hostname: "on"'),
      PRODUCTION_FORMS,
    );
    assert.deepEqual(warnings(back.report), []);
    assert.deepEqual(load(back.text), { ...STAGING_VALUES, 'local-hostname': 'on' }, back.text);
  });

  it('a block of one line is read; one of more lines is still a warning', () => {
    const production = PRODUCTION_FORMS.replace('  pweb07\n', '  pweb07\n  web\n');
    const { report, text } = sync(STAGING_PLAIN, production);
    assert.deepEqual(warnings(report), [['meta.cloudinit.local-hostname', 'IDENTITY_UNPARSABLE']]);
    const out = load(text);
    assert.equal(out['instance-id'], STAGING_VALUES['instance-id']);
    assert.equal(out.hostname, STAGING_VALUES.hostname);
  });

  it('a plain or quoted scalar going on over more lines is read whole (its line breaks folded), on either side', () => {
    const production = `instance-id:
  iid-pweb07
  -a
local-hostname: pweb-
  07 # production
hostname: "pweb07.
  corp.example"
fqdn: 'pweb07

  .corp.example'
`;
    const { report, text } = sync(STAGING_PLAIN, production);
    assert.deepEqual(warnings(report), []);
    assert.deepEqual(load(text), STAGING_VALUES, text);
    assert.deepEqual(
      report.fields.filter((f) => f.status === 'restored').map((f) => f.sourceValue),
      ['iid-pweb07 -a', 'pweb- 07', 'pweb07. corp.example', 'pweb07\n.corp.example'],
    );
    assert.match(text, /^local-hostname: stage-app-07 # production$/m);

    // and back: staging's own written as it was, over its lines
    const back = syncAgain(production, PRODUCTION_PLAIN);
    assert.deepEqual(warnings(back.report), []);
    assert.deepEqual(load(back.text), load(production), back.text);
  });
});
