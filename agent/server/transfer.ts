/**
 * Import and export of raw disk images on the agent host, sparse-aware:
 * all-zero blocks are not written (import) and holes stay holes (export).
 */
import * as fs from 'node:fs';
import type { Pool } from '../engine';
import { INVALID_ARGUMENT } from '../engine';

const CHUNK = 4 * 1024 * 1024;

export type Progress = (done: number, total: number) => void;

const isZero = (b: Buffer) => b.every((x) => x === 0);

/** Copies a raw image into a vdisk (created with the image's size when asked). */
export async function importImage(
  pool: Pool,
  file: string,
  container: string,
  create: boolean,
  progress: Progress,
): Promise<{ bytes: number; dataBytes: number }> {
  const size = fs.statSync(file).size;
  if (create) pool.createContainer({ name: container, type: 'vdisk', size });
  const info = pool.describe(container);
  if (info.type === 'vm')
    throw INVALID_ARGUMENT('import into a vdisk or file, not a VM', { argument: 'container' });
  if (info.size < size) {
    throw INVALID_ARGUMENT(`the image (${size} bytes) is larger than "${container}" (${info.size} bytes)`, {
      argument: 'path',
    });
  }
  const fd = fs.openSync(file, 'r');
  const buffer = Buffer.allocUnsafe(CHUNK);
  let dataBytes = 0;
  try {
    for (let offset = 0; offset < size; offset += CHUNK) {
      const n = fs.readSync(fd, buffer, 0, Math.min(CHUNK, size - offset), offset);
      // Block by block: all-zero blocks are not stored (whatever the container held there is zeroed).
      for (let at = 0; at < n; ) {
        const length = Math.min(pool.blockSize - ((offset + at) % pool.blockSize), n - at);
        const piece = buffer.subarray(at, at + length);
        if (isZero(piece)) pool.writeZeroes(container, offset + at, length);
        else {
          pool.write(container, offset + at, piece);
          dataBytes += length;
        }
        at += length;
      }
      progress(offset + n, size);
      await new Promise((resolve) => setImmediate(resolve));
    }
  } finally {
    fs.closeSync(fd);
  }
  await pool.flush();
  return { bytes: size, dataBytes };
}

/** Writes a vdisk (or one of its snapshots) to a sparse raw image. */
export async function exportImage(
  pool: Pool,
  file: string,
  container: string,
  snapshot: string | undefined,
  overwrite: boolean,
  progress: Progress,
): Promise<{ bytes: number; dataBytes: number }> {
  const ref = snapshot ? `${container}@${snapshot}` : null;
  const size = ref ? pool.describeSnapshot(ref).size : pool.describe(container).size;
  const extents = ref ? pool.snapshotAllocation(ref, 0, size) : pool.allocation(container, 0, size);
  const fd = fs.openSync(file, overwrite ? 'w' : 'wx');
  let dataBytes = 0;
  try {
    fs.ftruncateSync(fd, size);
    for (const extent of extents) {
      if (extent.state !== 'data') continue;
      for (let offset = extent.offset; offset < extent.offset + extent.length; offset += CHUNK) {
        const length = Math.min(CHUNK, extent.offset + extent.length - offset);
        const data = ref ? pool.readSnapshot(ref, offset, length) : pool.read(container, offset, length);
        fs.writeSync(fd, data, 0, length, offset);
        dataBytes += length;
        progress(dataBytes, size);
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  progress(size, size);
  return { bytes: size, dataBytes };
}
