/** Moving disk images in and out of a real pool. */
import * as fs from 'node:fs';
import type { Pool } from '../../../agent/engine';

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

/** A file container holding `content`, as a VM member. */
export function addConfig(
  pool: Pool,
  vm: string,
  role: string,
  content: string | Buffer,
  labels: Record<string, string> = {},
): void {
  const name = `${vm}-${role}`;
  pool.createContainer({ name, type: 'file', labels, file: { mode: 0o600, uid: 1000, gid: 1000 } });
  if (content.length > 0) pool.write(name, 0, Buffer.from(content));
  pool.addMember(vm, role, name);
}

export const readText = (pool: Pool, name: string) =>
  pool.read(name, 0, pool.describe(name).size).toString('utf8');
