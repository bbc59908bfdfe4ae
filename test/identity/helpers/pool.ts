/** Moving disk images in and out of a real pool. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import type { FileMeta, Pool, SyncResult } from '../../../agent/engine';

/** Writes an image file into a new vdisk (all-zero chunks skipped, as a sparse import would). */
export function importImage(pool: Pool, name: string, file: string): void {
  const data = fs.readFileSync(file);
  pool.createContainer({ name, type: 'vdisk', size: data.length });
  addImage(pool, name, data);
}

export function addImage(pool: Pool, name: string, data: Buffer): void {
  const step = 64 * 1024;
  for (let at = 0; at < data.length; at += step) {
    const chunk = data.subarray(at, Math.min(data.length, at + step));
    if (chunk.some((b) => b !== 0)) pool.write(name, at, chunk);
  }
}

/** Reads a container out to a file, as a user would before pointing tools at it. */
export function exportImage(pool: Pool, name: string, file: string): Buffer {
  const data = pool.read(name, 0, pool.describe(name).size);
  fs.writeFileSync(file, data);
  return data;
}

/** A config member's own metadata: what a sync must leave as the target had it. */
export interface FileOwnMeta {
  labels?: Record<string, string>;
  file?: FileMeta;
}

/** A file container holding `content`, as a VM member (mode 0600, owner 1000:1000 unless given). */
export function addConfig(
  pool: Pool,
  vm: string,
  role: string,
  content: string | Buffer,
  meta: FileOwnMeta = {},
): void {
  const name = `${vm}-${role}`;
  pool.createContainer({
    name,
    type: 'file',
    labels: meta.labels ?? {},
    file: meta.file ?? { mode: 0o600, uid: 1000, gid: 1000 },
  });
  if (content.length > 0) pool.write(name, 0, Buffer.from(content));
  pool.addMember(vm, role, name);
}

/**
 * Blocks the sync left in the target's new current tables (what its restore wrote), counted by the
 * engine's space accounting, not by the hook: once the safety snapshot is deleted the target has no
 * snapshot of its own, so what deleting it would free (`usage().exclusiveBytes`) is exactly the
 * blocks its current tables map themselves; the source's blocks under them are shared.
 */
export function blocksInNewTables(pool: Pool, result: SyncResult<unknown>): number {
  const { target, safetySnapshot } = result;
  if (safetySnapshot) pool.deleteSnapshot(`${safetySnapshot.container}@${safetySnapshot.name}`);
  for (const name of [target.name, ...Object.values(target.members)])
    assert.deepEqual(pool.listSnapshots(name, { includeHidden: true }), [], `${name} has no snapshot left`);
  return pool.usage(target.name).exclusiveBytes / pool.blockSize;
}

export const readText = (pool: Pool, name: string) =>
  pool.read(name, 0, pool.describe(name).size).toString('utf8');

/** A libvirt domain with one NIC per MAC, each on network 'default'. */
export function libvirtDomain(name: string, uuid: string, macs: string[]): string {
  return [
    "<domain type='kvm'>",
    `  <name>${name}</name>`,
    `  <uuid>${uuid}</uuid>`,
    '  <devices>',
    ...macs.flatMap((mac) => [
      "    <interface type='network'>",
      `      <mac address='${mac}'/>`,
      "      <source network='default'/>",
      '    </interface>',
    ]),
    '  </devices>',
    '</domain>',
    '',
  ].join('\n');
}
