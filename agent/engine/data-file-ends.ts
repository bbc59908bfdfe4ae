/**
 * At open: every data file must reach the highest block handed out in it:
 * its end, or with sub-blocks (sub-block.ts) the end of its first sub-block
 * (a block was written whole, or at least one of its sub-blocks was, before
 * any map entry named it; which ones only a map walk tells). A file
 * cut short (a truncate, a copy or restore that stopped early) would read
 * zeros where acknowledged data was; the pool is refused instead, naming the
 * file, its size and the size it must have. Cost: the space map's free
 * extents above each file's highest block, no map walk (fsck's
 * DATA_FILE_SHORT walks the map and lists the blocks lost).
 */
import { CORRUPT } from './errors';
import { dataFileSizes } from './fsck';
import type { SpaceMap } from './space-map';
import type { BlockDevice } from './store/block-device';
import { subBlockSize } from './sub-block';

export function checkDataFileEnds(device: BlockDevice, space: SpaceMap): void {
  const { layout, blockSize } = device;
  dataFileSizes(device.paths).forEach(({ path, bytes }, file) => {
    // Physical block p lives in file (p - 1) mod n (data-layout.ts).
    const highest = space.highestAllocated(file + 1, layout.files);
    if (highest === 0) return;
    const needed = layout.locate(highest).position + subBlockSize(blockSize);
    if (bytes >= needed) return;
    throw CORRUPT(
      `data file ${path} is ${bytes} bytes but must be at least ${needed}: blocks up to ${highest} are in use in it ` +
        '(the file was cut short, or restored from an incomplete copy). Restore it from the copy the pool came from; ' +
        '`fsck --pool` lists the blocks lost (operator guide: "A data file shorter than its blocks")',
      { path, bytes, neededBytes: needed, block: highest, dataFileShort: true },
    );
  });
}
