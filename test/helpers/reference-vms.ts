/**
 * Two VMs on an engine pool for the reference tests: prod-app (the fixture
 * .vmx plus a NIC on `prod-dmz`, which staging has no network for) and
 * staging-app, each with its config as member `config`, and prod-app@nightly.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Pool } from '../../agent/engine';

const fixture = (name: string) =>
  fs.readFileSync(path.join(__dirname, '../fixtures/identity/references', name), 'utf8');

export function createReferenceVms(pool: Pool): void {
  const prod = fixture('prod-app.vmx').replace(
    'serial0.present',
    'ethernet2.networkName = "prod-dmz"\nethernet2.present = "TRUE"\nserial0.present',
  );
  for (const [vm, text] of [
    ['prod-app', prod],
    ['staging-app', fixture('staging-app.vmx')],
  ] as const) {
    pool.createContainer({ name: `${vm}-config`, type: 'file' });
    pool.write(`${vm}-config`, 0, Buffer.from(text));
    pool.createContainer({ name: vm, type: 'vm' });
    pool.addMember(vm, 'config', `${vm}-config`);
  }
  pool.snapshot('prod-app', 'nightly');
}
