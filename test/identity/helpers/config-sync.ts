/** Two VMs in a real pool, each a config member and empty disks: staging-app synced from prod-app@nightly. */
import type { Pool } from '../../../agent/engine';
import { createIdentityHooks, type IdentityReport, type ReferenceOptions } from '../../../agent/identity';
import { addConfig, readText } from './pool';

const KiB = 1024;

function vm(pool: Pool, name: string, config: string, disks: string[]): void {
  pool.createContainer({ name, type: 'vm' });
  addConfig(pool, name, 'config', config);
  for (const disk of disks) {
    pool.createContainer({ name: `${name}-${disk}`, type: 'vdisk', size: 64 * KiB });
    pool.addMember(name, disk, `${name}-${disk}`);
  }
}

/** The identity report, and staging's config after the sync. */
export function syncConfigs(
  pool: Pool,
  prod: string,
  staging: string,
  options: ReferenceOptions = {},
  disks: { prod: string[]; staging: string[] } = { prod: ['disk0'], staging: ['disk0'] },
): { report: IdentityReport; after: string } {
  vm(pool, 'prod-app', prod, disks.prod);
  vm(pool, 'staging-app', staging, disks.staging);
  pool.snapshot('prod-app', 'nightly');
  const report = pool.sync('staging-app', 'prod-app@nightly', {
    hooks: createIdentityHooks('default', options),
  }).identity as IdentityReport;
  return { report, after: readText(pool, 'staging-app-config') };
}
