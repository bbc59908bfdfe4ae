/**
 * Per-developer clones of a golden image: one golden vdisk, a versioned
 * snapshot of it, and a clone per developer. A clone copies no data and
 * diverges on its first write; bumping `goldenVersion` takes a new snapshot
 * and gives every developer a fresh clone of it.
 */
import * as pulumi from '@pulumi/pulumi';
import { Container, Snapshot } from '@snapsync/pulumi';

const config = new pulumi.Config();
const developers = config.getObject<string[]>('developers') ?? ['alice', 'bob'];
const goldenVersion = config.get('goldenVersion') ?? 'v1';

const golden = new Container('golden-image', {
  type: 'vdisk',
  size: 40 * 2 ** 30,
  labels: { role: 'golden' },
});
const release = new Snapshot('golden', { container: golden.name, name: `golden-${goldenVersion}` });

const clones = developers.map(
  (dev) =>
    new Container(`dev-${dev}`, {
      type: 'vdisk',
      fromSnapshot: release.ref,
      labels: { owner: dev, golden: goldenVersion },
    }),
);

export const goldenSnapshot = release.ref;
export const cloneNames = pulumi.all(clones.map((c) => c.name));
export const cloneUuids = pulumi.all(clones.map((c) => c.uuid));
