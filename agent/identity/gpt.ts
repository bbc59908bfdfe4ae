/**
 * GPT identity: the disk GUID in the primary header (LBA 1) and in the backup
 * header (at the primary's AlternateLBA), each header's CRC32 recomputed as
 * the UEFI spec says (over HeaderSize bytes with the CRC field zeroed).
 * Partition unique GUIDs are opt-in: changing them rewrites both entry arrays'
 * GUIDs and the PartitionEntryArrayCRC32 in both headers.
 * Logical sector size (512 or 4096) is found by locating "EFI PART".
 */
import type { ContainerView } from '../engine';
import { crc32 } from './crc32';
import type { Extracted } from './fields';
import { guidFromString, guidToString } from './guid';

const SIGNATURE = Buffer.from('EFI PART', 'ascii');
const DISK_GUID = 56;
const HEADER_CRC = 16;
const ENTRIES_CRC = 88;

interface Header {
  lba: number;
  sector: number;
  bytes: Buffer;
  size: number;
  alternate: number;
  entriesLba: number;
  entryCount: number;
  entrySize: number;
}

function readHeader(view: ContainerView, lba: number, sector: number): Header | null {
  const offset = lba * sector;
  if (offset + 92 > view.size()) return null;
  const bytes = view.read(offset, 92);
  if (!bytes.subarray(0, 8).equals(SIGNATURE)) return null;
  const size = bytes.readUInt32LE(12);
  if (size < 92 || size > sector) return null;
  const full = view.read(offset, size);
  return {
    lba,
    sector,
    bytes: full,
    size,
    alternate: Number(full.readBigUInt64LE(32)),
    entriesLba: Number(full.readBigUInt64LE(72)),
    entryCount: full.readUInt32LE(80),
    entrySize: full.readUInt32LE(84),
  };
}

function headerCrcOk(h: Header): boolean {
  const copy = Buffer.from(h.bytes);
  copy.writeUInt32LE(0, HEADER_CRC);
  return crc32(copy) === h.bytes.readUInt32LE(HEADER_CRC);
}

/** The primary and backup headers, or why they cannot be used. */
function headers(view: ContainerView): { primary: Header; backup: Header } | { error: string } | null {
  for (const sector of [512, 4096]) {
    const primary = readHeader(view, 1, sector);
    if (!primary) continue;
    if (!headerCrcOk(primary)) return { error: 'primary GPT header CRC does not match' };
    const backup = readHeader(view, primary.alternate, sector);
    if (!backup) return { error: `no backup GPT header at LBA ${primary.alternate}` };
    if (!headerCrcOk(backup)) return { error: 'backup GPT header CRC does not match' };
    return { primary, backup };
  }
  return null;
}

function entries(view: ContainerView, h: Header): Buffer {
  return view.read(h.entriesLba * h.sector, h.entryCount * h.entrySize);
}

export function extractGpt(view: ContainerView, out: Extracted): void {
  const found = headers(view);
  if (found === null) return;
  if ('error' in found) {
    out.warnings.push({ path: 'gpt.diskGuid', code: 'IDENTITY_UNPARSABLE', message: found.error });
    return;
  }
  out.fields.set('gpt.diskGuid', guidToString(found.primary.bytes.subarray(DISK_GUID, DISK_GUID + 16)));
  const table = entries(view, found.primary);
  if (crc32(table) !== found.primary.bytes.readUInt32LE(ENTRIES_CRC)) {
    out.warnings.push({
      path: 'gpt.partitions',
      code: 'IDENTITY_UNPARSABLE',
      message: 'partition entry array CRC does not match',
    });
    return;
  }
  for (let i = 0; i < found.primary.entryCount; i++) {
    const entry = table.subarray(i * found.primary.entrySize, (i + 1) * found.primary.entrySize);
    if (entry.subarray(0, 16).every((b) => b === 0)) continue; // unused entry
    const path = `gpt.partition${i + 1}.uniqueGuid`;
    out.fields.set(path, guidToString(entry.subarray(16, 32)));
    out.optIn.add(path);
  }
}

/** Writes the wanted GPT values (disk GUID, partition GUIDs by number) into both headers and arrays. */
export function restoreGpt(
  view: ContainerView,
  diskGuid: string | null,
  partitions: Map<number, string>,
): void {
  const found = headers(view);
  if (found === null || 'error' in found) throw new Error('the GPT could not be read after the sync');
  for (const h of [found.primary, found.backup]) {
    const offset = h.lba * h.sector;
    const header = Buffer.from(h.bytes);
    if (diskGuid) {
      guidFromString(diskGuid).copy(header, DISK_GUID);
      view.write(offset + DISK_GUID, header.subarray(DISK_GUID, DISK_GUID + 16));
    }
    if (partitions.size > 0) {
      const table = entries(view, h);
      for (const [number, guid] of partitions) {
        const at = (number - 1) * h.entrySize + 16;
        guidFromString(guid).copy(table, at);
        view.write(h.entriesLba * h.sector + at, table.subarray(at, at + 16));
      }
      header.writeUInt32LE(crc32(table), ENTRIES_CRC);
      view.write(offset + ENTRIES_CRC, header.subarray(ENTRIES_CRC, ENTRIES_CRC + 4));
    }
    header.writeUInt32LE(0, HEADER_CRC);
    const crc = Buffer.alloc(4);
    crc.writeUInt32LE(crc32(header), 0);
    view.write(offset + HEADER_CRC, crc);
  }
}
