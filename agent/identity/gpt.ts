/**
 * GPT identity (UEFI 2.10 §5.3): the disk GUID in the primary header (LBA 1)
 * and in the backup header (at the primary's AlternateLBA, normally the last
 * LBA); each header's HeaderCRC32 is recomputed over HeaderSize bytes with
 * the CRC field zeroed. Partition unique GUIDs are opt-in: changing them
 * rewrites the GUID in both entry arrays, and both headers'
 * PartitionEntryArrayCRC32. The logical sector size (512 or 4096) is the one
 * at which "EFI PART" sits at LBA 1.
 * A label that does not verify is never written: it is reported instead.
 */
import type { ContainerView } from '../engine';
import { CORRUPT } from '../engine/errors';
import { crc32 } from './crc32';
import type { Extracted } from './fields';
import { guidFromString, guidToString } from './guid';
import { writeChanged } from './write';

const SIGNATURE = 'EFI PART';
const HEADER_CRC = 16;
const MY_LBA = 24;
const ALTERNATE_LBA = 32;
const DISK_GUID = 56;
const ENTRIES_LBA = 72;
const ENTRY_COUNT = 80;
const ENTRY_SIZE = 84;
const ENTRIES_CRC = 88;
const MIN_HEADER = 92;
/** Sanity bound on an entry array (the usual one is 16 KiB). */
const MAX_ENTRY_ARRAY = 4 * 1024 * 1024;
export const SECTOR_SIZES = [512, 4096] as const;

export const DISK_GUID_FIELD = 'gpt.diskGuid';
export const partitionField = (number: number) => `gpt.partition${number}.uniqueGuid`;
export const PARTITION_FIELD = /^gpt\.partition(\d+)\.uniqueGuid$/;

export interface GptHeader {
  lba: number;
  offset: number;
  bytes: Buffer;
  alternate: number;
  entriesOffset: number;
  entryCount: number;
  entrySize: number;
}

export interface Gpt {
  sector: number;
  primary: GptHeader;
  backup: GptHeader;
}

const headerCrc = (bytes: Buffer): number => {
  const copy = Buffer.from(bytes);
  copy.writeUInt32LE(0, HEADER_CRC);
  return crc32(copy);
};

/** The sector size at which LBA 1 holds a GPT header signature, or null: no GPT. */
function sectorSize(view: ContainerView): number | null {
  for (const sector of SECTOR_SIZES) {
    if (view.size() < 2 * sector) continue;
    if (view.read(sector, 8).toString('latin1') === SIGNATURE) return sector;
  }
  return null;
}

function readHeader(view: ContainerView, lba: number, sector: number): GptHeader | string {
  const offset = lba * sector;
  if (!Number.isSafeInteger(offset) || offset + sector > view.size())
    return `LBA ${lba} is past the end of the disk`;
  const start = view.read(offset, MIN_HEADER);
  if (start.toString('latin1', 0, 8) !== SIGNATURE) return `no "${SIGNATURE}" signature at LBA ${lba}`;
  const size = start.readUInt32LE(12);
  if (size < MIN_HEADER || size > sector)
    return `HeaderSize ${size} is not between ${MIN_HEADER} and ${sector}`;
  const bytes = view.read(offset, size);
  if (headerCrc(bytes) !== bytes.readUInt32LE(HEADER_CRC)) return 'HeaderCRC32 does not match';
  if (Number(bytes.readBigUInt64LE(MY_LBA)) !== lba) return `MyLBA is not ${lba}`;
  const entryCount = bytes.readUInt32LE(ENTRY_COUNT);
  const entrySize = bytes.readUInt32LE(ENTRY_SIZE);
  if (entrySize < 128 || entrySize % 8 !== 0) return `SizeOfPartitionEntry ${entrySize} is invalid`;
  if (entryCount * entrySize > MAX_ENTRY_ARRAY)
    return `the partition entry array (${entryCount} × ${entrySize}) is too large`;
  const entriesOffset = Number(bytes.readBigUInt64LE(ENTRIES_LBA)) * sector;
  if (!Number.isSafeInteger(entriesOffset) || entriesOffset + entryCount * entrySize > view.size()) {
    return 'the partition entry array is past the end of the disk';
  }
  return {
    lba,
    offset,
    bytes,
    alternate: Number(bytes.readBigUInt64LE(ALTERNATE_LBA)),
    entriesOffset,
    entryCount,
    entrySize,
  };
}

const entryArray = (view: ContainerView, h: GptHeader): Buffer =>
  view.read(h.entriesOffset, h.entryCount * h.entrySize);

/** Both headers, verified as a tool would (CRCs, positions, agreement); null: no GPT; a string: why not usable. */
export function readGpt(view: ContainerView): Gpt | string | null {
  const sector = sectorSize(view);
  if (sector === null) return null;
  const primary = readHeader(view, 1, sector);
  if (typeof primary === 'string') return `primary GPT header: ${primary}`;
  if (primary.alternate <= 1) return `primary GPT header: AlternateLBA ${primary.alternate} is invalid`;
  const backup = readHeader(view, primary.alternate, sector);
  if (typeof backup === 'string') return `backup GPT header: ${backup}`;
  if (backup.alternate !== 1) return 'backup GPT header: AlternateLBA is not 1';
  if (
    !primary.bytes
      .subarray(DISK_GUID, DISK_GUID + 16)
      .equals(backup.bytes.subarray(DISK_GUID, DISK_GUID + 16))
  ) {
    return 'the primary and backup GPT headers hold different disk GUIDs';
  }
  if (primary.entryCount !== backup.entryCount || primary.entrySize !== backup.entrySize) {
    return 'the primary and backup GPT headers describe different partition entry arrays';
  }
  for (const [name, h] of [
    ['primary', primary],
    ['backup', backup],
  ] as const) {
    if (crc32(entryArray(view, h)) !== h.bytes.readUInt32LE(ENTRIES_CRC)) {
      return `the ${name} partition entry array does not match its CRC32`;
    }
  }
  return { sector, primary, backup };
}

export function extractGpt(view: ContainerView, out: Extracted): void {
  const gpt = readGpt(view);
  if (gpt === null) return;
  if (typeof gpt === 'string') {
    out.problems.push({ field: DISK_GUID_FIELD, code: 'IDENTITY_UNPARSABLE', message: gpt });
    return;
  }
  const diskGuid = guidToString(gpt.primary.bytes.subarray(DISK_GUID, DISK_GUID + 16));
  out.fields.set(DISK_GUID_FIELD, { value: diskGuid, raw: diskGuid, style: '' });
  const { entrySize, entryCount } = gpt.primary;
  const table = entryArray(view, gpt.primary);
  for (let i = 0; i < entryCount; i++) {
    const entry = table.subarray(i * entrySize, (i + 1) * entrySize);
    if (entry.subarray(0, 16).every((b) => b === 0)) continue; // an unused entry has a zero type GUID
    const field = partitionField(i + 1);
    const guid = guidToString(entry.subarray(16, 32));
    out.fields.set(field, { value: guid, raw: guid, style: '' });
    out.optIn.add(field);
  }
}

/**
 * Writes the disk GUID and partition unique GUIDs (by partition number) into
 * both headers and both entry arrays, with every CRC recomputed; only the
 * bytes that change are written.
 */
export function restoreGpt(
  view: ContainerView,
  diskGuid: string | null,
  partitions: Map<number, string>,
): void {
  const gpt = readGpt(view);
  // The caller only restores what it has just read from this view: a label that does not verify here is a bug.
  if (gpt === null || typeof gpt === 'string')
    throw CORRUPT(`the GPT cannot be restored: ${gpt ?? 'none found'}`);
  for (const h of [gpt.primary, gpt.backup]) {
    const header = Buffer.from(h.bytes);
    if (diskGuid !== null) guidFromString(diskGuid).copy(header, DISK_GUID);
    if (partitions.size > 0) {
      const old = entryArray(view, h);
      const next = Buffer.from(old);
      for (const [number, guid] of partitions) {
        if (number < 1 || number > h.entryCount) throw CORRUPT(`the GPT has no partition entry ${number}`);
        guidFromString(guid).copy(next, (number - 1) * h.entrySize + 16);
      }
      writeChanged(view, h.entriesOffset, old, next);
      header.writeUInt32LE(crc32(next), ENTRIES_CRC);
    }
    header.writeUInt32LE(headerCrc(header), HEADER_CRC);
    writeChanged(view, h.offset, h.bytes, header);
  }
}
