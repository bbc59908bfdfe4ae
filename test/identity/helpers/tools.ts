/** The real disk tools the identity tests check their results with. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Runs a tool; throws with its output when it exits non-zero. */
export function run(cmd: string, args: string[], input?: string): { stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stdout}${r.stderr}`);
  return { stdout: r.stdout, stderr: r.stderr };
}

export const MiB = 1024 * 1024;

function blankImage(file: string, bytes: number): void {
  fs.writeFileSync(file, Buffer.alloc(0));
  fs.truncateSync(file, bytes);
}

/** An ext4 filesystem with a few real files, at byte `offset` of `file`, `blocks` 4 KiB blocks long. */
function ext4(file: string, offset: number, blocks: number, label: string): void {
  const root = fs.mkdtempSync(path.join(path.dirname(file), 'root-'));
  fs.mkdirSync(path.join(root, 'etc'));
  fs.writeFileSync(path.join(root, 'etc', 'hostname'), `${label}\n`);
  fs.writeFileSync(path.join(root, 'data.txt'), `${label} `.repeat(20_000));
  run('mkfs.ext4', [
    '-q',
    '-F',
    '-b',
    '4096',
    '-L',
    label,
    '-d',
    root,
    '-E',
    `offset=${offset}`,
    file,
    String(blocks),
  ]);
  fs.rmSync(root, { recursive: true });
}

export interface DiskImage {
  file: string;
  sector: number;
  /** Byte offset and length of partition 1. */
  partition: { offset: number; length: number };
}

/** GPT with 512-byte sectors (sgdisk), partition 1 from 1 MiB to the end holding ext4, with the given GUIDs. */
export function gpt512(
  file: string,
  sizeMiB: number,
  diskGuid: string,
  partGuid: string,
  label: string,
): DiskImage {
  blankImage(file, sizeMiB * MiB);
  run('sgdisk', [
    '-o',
    '-n',
    '1:2048:0',
    '-t',
    '1:8300',
    '-c',
    `1:${label}`,
    '-U',
    diskGuid,
    '-u',
    `1:${partGuid}`,
    file,
  ]);
  const last = Number(/^\s*1\s+\d+\s+(\d+)/m.exec(run('sgdisk', ['-p', file]).stdout)![1]);
  const partition = { offset: 2048 * 512, length: (last + 1 - 2048) * 512 };
  ext4(file, partition.offset, Math.floor(partition.length / 4096), label);
  return { file, sector: 512, partition };
}

/** GPT with 4096-byte logical sectors: util-linux fdisk -b 4096 (sgdisk assumes 512 on a plain file). */
export function gpt4k(
  file: string,
  sizeMiB: number,
  diskGuid: string,
  partGuid: string,
  label: string,
): DiskImage {
  blankImage(file, sizeMiB * MiB);
  run('fdisk', ['-b', '4096', file], `g\nn\n\n\n\nx\ni\n${diskGuid}\nu\n${partGuid}\nr\nw\n`);
  const line = /^\S+1\s+(\d+)\s+(\d+)/m.exec(fdisk4k(file).stdout)!;
  const partition = {
    offset: Number(line[1]) * 4096,
    length: (Number(line[2]) + 1 - Number(line[1])) * 4096,
  };
  ext4(file, partition.offset, partition.length / 4096, label);
  return { file, sector: 4096, partition };
}

/** MBR (sfdisk) with one Linux partition from 1 MiB holding ext4. */
export function mbr(file: string, sizeMiB: number, diskId: string, label: string): DiskImage {
  blankImage(file, sizeMiB * MiB);
  run('sfdisk', ['-q', file], `label: dos\nlabel-id: 0x${diskId}\nstart=2048, type=83\n`);
  const partition = { offset: MiB, length: (sizeMiB - 1) * MiB };
  ext4(file, partition.offset, partition.length / 4096, label);
  return { file, sector: 512, partition };
}

export const fdisk4k = (file: string) =>
  run('fdisk', ['-b', '4096', '-l', '-o', 'Device,Start,End,UUID', file]);

/** e2fsck -fn on partition 1 (copied out: e2fsck takes no offset); throws when it finds a problem. */
export function e2fsckPartition(image: Buffer, disk: DiskImage, scratch: string): string {
  const file = path.join(scratch, `part-${path.basename(disk.file)}`);
  fs.writeFileSync(
    file,
    image.subarray(disk.partition.offset, disk.partition.offset + disk.partition.length),
  );
  const out = run('e2fsck', ['-fn', file]);
  fs.rmSync(file);
  return out.stdout;
}

/** Byte offsets where two buffers differ, as [start, end) runs. */
export function differences(a: Uint8Array, b: Uint8Array): Array<[number, number]> {
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

/** The differing runs that are not inside one of the allowed [start, end) ranges. */
export const outside = (diffs: Array<[number, number]>, allowed: Array<[number, number]>) =>
  diffs.filter(([s, e]) => !allowed.some(([a, b]) => s >= a && e <= b));
