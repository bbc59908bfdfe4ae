/**
 * The metadata commit a data file was last stamped after (the extended
 * attribute `user.snapsync.generation`, "<pool uuid> <generation>"): the
 * metadata counts its commits (MetadataStore.generation), and the pool
 * stamps its data files after each one is durable, never before. Metadata
 * at a LOWER generation than its data files' stamp is metadata put back
 * without the data files of its moment (`meta/` restored from an older
 * backup): its map points at blocks that since hold other data.
 *
 * Metadata at a higher generation is normal (a crash before the stamp).
 * A file with no stamp (a pool made before it, a filesystem without user
 * attributes, a raw device) or another pool's stamp tells nothing.
 * Cost: one system call per data file per commit (next to the commit's fsyncs).
 */
import { readAttribute, writeAttribute } from './xattr';

const ATTRIBUTE = 'user.snapsync.generation';

/** The generation `file` was stamped with by pool `uuid`, or null when it tells nothing. */
export function dataGeneration(file: string, uuid: string): number | null {
  const value = readAttribute(file, ATTRIBUTE);
  const [owner, generation] = value?.split(' ') ?? [];
  const n = Number(generation);
  return owner === uuid && Number.isSafeInteger(n) && n >= 0 ? n : null;
}

/** Stamps `file` as written up to metadata commit `generation`; false where it cannot be kept. */
export function stampDataGeneration(file: string, uuid: string, generation: number): boolean {
  return writeAttribute(file, ATTRIBUTE, `${uuid} ${generation}`);
}
