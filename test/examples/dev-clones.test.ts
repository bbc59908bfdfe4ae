import * as assert from 'node:assert/strict';
import { type RegisteredResource, runProgram } from '../helpers/pulumi-mocks';

describe('examples/dev-clones under Pulumi mocks', () => {
  let resources: RegisteredResource[];
  let outputs: Record<string, unknown>;

  before(async () => {
    ({ resources, outputs } = await runProgram(
      'dev-clones',
      { 'dev-clones:developers': JSON.stringify(['ana', 'ben', 'chen']), 'dev-clones:goldenVersion': 'v7' },
      async () => require('../../examples/dev-clones/index'),
      (r) =>
        r.name === 'golden' ? { ref: `${r.inputs.container}@${r.inputs.name}` } : { uuid: `${r.name}-uuid` },
    ));
  });

  it('clones the versioned golden snapshot once per developer', () => {
    const snapshot = resources.find((r) => r.type.endsWith('snapsync:Snapshot'))!;
    assert.deepEqual([snapshot.inputs.container, snapshot.inputs.name], ['golden-image', 'golden-v7']);
    const clones = resources.filter((r) => r.name.startsWith('dev-'));
    assert.deepEqual(
      clones.map((c) => [c.name, c.inputs.fromSnapshot, (c.inputs.labels as Record<string, string>).owner]),
      [
        ['dev-ana', 'golden-image@golden-v7', 'ana'],
        ['dev-ben', 'golden-image@golden-v7', 'ben'],
        ['dev-chen', 'golden-image@golden-v7', 'chen'],
      ],
    );
    assert.deepEqual(outputs.cloneNames, ['dev-ana', 'dev-ben', 'dev-chen']);
  });
});
