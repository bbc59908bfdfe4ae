/** Disk images made with the real tools, moved in and out of a pool. */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import type { Pool } from '../../agent/engine';

export const run = (cmd: string, args: string[], input?: string) =>
  execFileSync(cmd, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], input });

/** Writes an image file into a new vdisk (zero blocks skipped). */
export function importImage(pool: Pool, name: string, file: string): void {
  const data = fs.readFileSync(file);
  pool.createContainer({ name, type: 'vdisk', size: data.length });
  const step = 64 * 1024;
  for (let at = 0; at < data.length; at += step) {
    const chunk = data.subarray(at, Math.min(data.length, at + step));
    if (chunk.some((b) => b !== 0)) pool.write(name, at, chunk);
  }
}

export function exportImage(pool: Pool, name: string, file: string): Buffer {
  const data = pool.read(name, 0, pool.describe(name).size);
  fs.writeFileSync(file, data);
  return data;
}

/** A GPT disk (512-byte sectors) with one Linux partition holding an ext4 filesystem. */
export function gptDiskWithExt4(
  file: string,
  sizeMiB: number,
  label: string,
): { diskGuid: string; partGuid: string } {
  fs.writeFileSync(file, Buffer.alloc(0));
  fs.truncateSync(file, sizeMiB * 1024 * 1024);
  run('sgdisk', ['-o', '-n', '1:2048:0', '-t', '1:8300', '-c', `1:${label}`, file]);
  run('mkfs.ext4', ['-q', '-F', '-L', label, '-E', `offset=${2048 * 512}`, file, `${(sizeMiB - 2) * 1024}`]);
  const info = run('sgdisk', ['-p', file]);
  const part = run('sgdisk', ['-i', '1', file]);
  return {
    diskGuid: /Disk identifier \(GUID\): (\S+)/.exec(info)![1]!,
    partGuid: /Partition unique GUID: (\S+)/.exec(part)![1]!,
  };
}

/** Byte offsets where two buffers differ, as [start, end) runs. */
export function differences(a: Buffer, b: Buffer): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] === b[i]) continue;
    const last = runs[runs.length - 1];
    if (last && last[1] === i) last[1] = i + 1;
    else runs.push([i, i + 1]);
  }
  return runs;
}
