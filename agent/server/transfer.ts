/**
 * Import and export of raw disk images on the agent host, sparse-aware:
 * an image's holes are not read and all-zero blocks are not written (import),
 * and holes stay holes (export). An import stops when the agent does.
 * host-files.ts opens the files (paths, types, links); this file copies.
 * `import --create` fills a staged container that nothing sees until the
 * import's last commit (engine/staged.ts); an import into an existing one
 * writes over an undo point that a failure or a crash reverts to
 * (engine/import-in-place.ts): all or nothing either way.
 */
import * as fs from 'node:fs';
import type { ContainerInfo, MutationOptions, Pool } from '../engine';
import { INVALID_ARGUMENT } from '../engine';
import { createImageTarget, type ImageSource, openImageSource } from './host-files';
import { type DataRegion, dataRegions } from './image-data-regions';
import type { AllowedDirs } from './paths';
import { WireError } from './wire-error';

const CHUNK = 4 * 1024 * 1024;

export type Progress = (done: number, total: number) => void;

export interface TransferResult {
  container: string;
  path: string;
  bytes: number;
  dataBytes: number;
}

const isZero = (b: Buffer) => b.every((x) => x === 0);
const yieldToLoop = () => new Promise((resolve) => setImmediate(resolve));

/** Where an import writes: a staged new container, or an existing one over its undo point. */
interface ImportSink {
  blockSize: number;
  /** The ranges of [offset, offset+length) that may read as non-zero now: what an image's hole must zero. */
  contentIn(offset: number, length: number): DataRegion[];
  write(offset: number, data: Buffer): void;
  writeZeroes(offset: number, length: number): void;
}

/**
 * Copies a raw image into a vdisk. With `create`, into a new vdisk of the
 * image's size that becomes visible, with the idempotency record, only once
 * the whole image is in; else into an existing vdisk or file, whose old
 * content comes back if the import fails or the agent dies before its end.
 */
export async function importImage(
  pool: Pool,
  dirs: AllowedDirs,
  requested: string,
  container: string,
  create: boolean,
  progress: Progress,
  mutation: MutationOptions,
  stopping: () => boolean,
): Promise<TransferResult> {
  const source = openImageSource(dirs, requested);
  try {
    const { size } = source;
    if (create) {
      const staged = pool.stageContainer({ name: container, type: 'vdisk', size });
      try {
        const dataBytes = await copyIn(
          source,
          { blockSize: pool.blockSize, contentIn: () => [], ...bind(staged) },
          progress,
          stopping,
        );
        await pool.flush();
        return staged.complete(
          (info) => ({
            container,
            path: requested,
            bytes: size,
            dataBytes,
            ...(info.warnings ? { warnings: info.warnings } : {}),
          }),
          mutation,
        );
      } catch (err) {
        staged.discard();
        throw err;
      }
    }
    checkImportInto(pool, container, size);
    const into = pool.importInto(container);
    try {
      const dataBytes = await copyIn(
        source,
        {
          blockSize: pool.blockSize,
          contentIn: (offset, length) =>
            pool.allocation(container, offset, length).filter((e) => e.state === 'data'),
          ...bind(into),
        },
        progress,
        stopping,
      );
      await pool.flush();
      return into.complete(() => ({ container, path: requested, bytes: size, dataBytes }), mutation);
    } catch (err) {
      into.abandon();
      throw err;
    }
  } finally {
    source.close();
  }
}

/** What an import into existing `container` refuses, for an image of `size` bytes. */
function checkImportInto(pool: Pool, container: string, size: number): void {
  const info: ContainerInfo = pool.describe(container);
  if (info.type === 'vm')
    throw INVALID_ARGUMENT('import into a vdisk or file, not a VM', { argument: 'container' });
  if (info.size < size) {
    throw INVALID_ARGUMENT(`the image (${size} bytes) is larger than "${container}" (${info.size} bytes)`, {
      argument: 'path',
    });
  }
}

/**
 * Throws what `importImage` into an existing container would refuse before
 * it copies: the path (allowed directory, file type, links) and the sizes.
 * Opens the image and closes it again.
 */
export function checkImport(pool: Pool, dirs: AllowedDirs, requested: string, container: string): void {
  const source = openImageSource(dirs, requested);
  try {
    checkImportInto(pool, container, source.size);
  } finally {
    source.close();
  }
}

const bind = (s: { write: ImportSink['write']; writeZeroes: ImportSink['writeZeroes'] }) => ({
  write: s.write.bind(s),
  writeZeroes: s.writeZeroes.bind(s),
});

/**
 * Copies the image's data regions (image-data-regions.ts) block by block:
 * all-zero blocks are not stored, and the holes between regions are never
 * read (what the container held there is zeroed). Progress counts
 * holes as done. Between chunks it gives the event loop a turn and gives up
 * with SHUTTING_DOWN once the agent stops (the caller undoes the import).
 */
async function copyIn(
  source: ImageSource,
  sink: ImportSink,
  progress: Progress,
  stopping: () => boolean,
): Promise<number> {
  const { fd, size } = source;
  const buffer = Buffer.allocUnsafe(CHUNK);
  let dataBytes = 0;
  let done = 0;
  const step = async () => {
    progress(done, size);
    await yieldToLoop();
    if (stopping()) throw new WireError('SHUTTING_DOWN', 'the agent is stopping: the import was undone', {});
  };
  // A hole: only what the container holds there is zeroed (a new one holds nothing).
  const zeroUpTo = async (end: number) => {
    if (done >= end) return;
    for (const content of sink.contentIn(done, end - done)) {
      for (let at = content.offset; at < content.offset + content.length; ) {
        const length = Math.min(CHUNK, content.offset + content.length - at);
        sink.writeZeroes(at, length);
        done = at += length;
        await step();
      }
    }
    done = end;
    await step();
  };
  for (const region of blockAligned(dataRegions(fd, size, source.kind), sink.blockSize, size)) {
    await zeroUpTo(region.offset);
    for (const end = region.offset + region.length; done < end; ) {
      const offset = done;
      const want = Math.min(CHUNK, end - offset);
      const n = fs.readSync(fd, buffer, 0, want, offset);
      if (n < want) throw shrank(offset + n, size);
      // Block by block: all-zero blocks are not stored (whatever the container held there is zeroed).
      for (let at = 0; at < n; ) {
        const length = Math.min(sink.blockSize - ((offset + at) % sink.blockSize), n - at);
        const piece = buffer.subarray(at, at + length);
        if (isZero(piece)) sink.writeZeroes(offset + at, length);
        else {
          sink.write(offset + at, piece);
          dataBytes += length;
        }
        at += length;
      }
      done = offset + n;
      await step();
    }
  }
  await zeroUpTo(size);
  // A hole is not read: a file cut short under us would otherwise import as zeros.
  if (source.kind === 'file' && fs.fstatSync(fd).size < size) throw shrank(fs.fstatSync(fd).size, size);
  return dataBytes;
}

// The file shrank under us: what was not read would silently stay zeros.
const shrank = (read: number, size: number) =>
  INVALID_ARGUMENT(`the image shrank during the import (read ${read} of ${size} bytes)`, {
    argument: 'path',
  });

/** `regions` widened to whole blocks of `blockSize` (the last one ends at `size`), touching ones merged. */
function* blockAligned(
  regions: Iterable<DataRegion>,
  blockSize: number,
  size: number,
): Generator<DataRegion> {
  let pending: DataRegion | null = null;
  for (const region of regions) {
    const start = region.offset - (region.offset % blockSize);
    const end = Math.min(size, Math.ceil((region.offset + region.length) / blockSize) * blockSize);
    if (pending !== null && start <= pending.offset + pending.length) pending.length = end - pending.offset;
    else {
      if (pending !== null) yield pending;
      pending = { offset: start, length: end - start };
    }
  }
  if (pending !== null) yield pending;
}

/** Writes a vdisk (or one of its snapshots) to a sparse raw image (or an allowed block device). */
export async function exportImage(
  pool: Pool,
  dirs: AllowedDirs,
  requested: string,
  container: string,
  snapshot: string | undefined,
  overwrite: boolean,
  progress: Progress,
  stopping: () => boolean = () => false,
): Promise<TransferResult> {
  // The path first: a path that is not allowed is refused as such, whatever the container.
  const target = createImageTarget(dirs, requested, overwrite);
  const { fd } = target;
  let dataBytes = 0;
  let size = 0;
  try {
    const ref = snapshot ? `${container}@${snapshot}` : null;
    size = ref ? pool.describeSnapshot(ref).size : pool.describe(container).size;
    const extents = ref ? pool.snapshotAllocation(ref, 0, size) : pool.allocation(container, 0, size);
    if (size > target.capacity)
      throw INVALID_ARGUMENT(`the block device holds ${target.capacity} bytes, the export ${size}`, {
        argument: 'path',
      });
    if (target.kind === 'file') fs.ftruncateSync(fd, size);
    const zeros = target.kind === 'block' ? Buffer.alloc(Math.min(CHUNK, size)) : null;
    for (const extent of extents) {
      // A file's holes read as zeros; a device's old content must be overwritten.
      if (extent.state !== 'data' && zeros === null) continue;
      for (let offset = extent.offset; offset < extent.offset + extent.length; offset += CHUNK) {
        const length = Math.min(CHUNK, extent.offset + extent.length - offset);
        if (extent.state === 'data') {
          const data = ref ? pool.readSnapshot(ref, offset, length) : pool.read(container, offset, length);
          fs.writeSync(fd, data, 0, length, offset);
          dataBytes += length;
        } else fs.writeSync(fd, zeros!, 0, length, offset);
        progress(dataBytes, size);
        await yieldToLoop();
        // A stop does not wait for a long export: a file's is discarded (its name never appears).
        if (stopping())
          throw new WireError(
            'SHUTTING_DOWN',
            target.kind === 'file'
              ? 'the agent is stopping: the export was discarded'
              : 'the agent is stopping: the export stopped part way, the device holds part of the image',
            {},
          );
      }
    }
    fs.fsyncSync(fd);
    target.commit();
  } catch (err) {
    target.discard();
    throw err;
  }
  progress(size, size);
  return { container, path: requested, bytes: size, dataBytes };
}
