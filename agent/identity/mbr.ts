/**
 * MBR disk signature: 4 bytes at byte 440 (little-endian; shown as 8 hex
 * digits, as `sfdisk -d` shows label-id), present when sector 0 ends with
 * 55 AA and holds a partition table (also a GPT disk's protective MBR).
 * A filesystem boot sector (FAT, NTFS, exFAT written straight on the disk)
 * also ends with 55 AA, but its byte 440 is boot code: it is left alone.
 * The field is opt-in: after a sync the guest's fstab and boot loader are the
 * source's, and name partitions by this signature.
 */
import type { ContainerView } from '../engine';
import { INVALID_ARGUMENT } from '../engine/errors';
import type { Extracted } from './fields';
import { writeChanged } from './write';

export const SIGNATURE_OFFSET = 440;
const FIELD = 'mbr.signature';

function isFilesystemBootSector(sector: Buffer): boolean {
  const at = (offset: number, text: string) =>
    sector.toString('latin1', offset, offset + text.length) === text;
  return at(3, 'NTFS    ') || at(3, 'EXFAT   ') || at(54, 'FAT1') || at(82, 'FAT32');
}

export function extractMbr(view: ContainerView, out: Extracted): void {
  if (view.size() < 512) return;
  const sector = view.read(0, 512);
  if (sector[510] !== 0x55 || sector[511] !== 0xaa || isFilesystemBootSector(sector)) return;
  // Every partition entry's status byte is 0x00 or 0x80 in a partition table.
  for (let entry = 446; entry < 510; entry += 16) {
    if (sector[entry] !== 0x00 && sector[entry] !== 0x80) {
      out.problems.push({
        field: FIELD,
        code: 'IDENTITY_UNPARSABLE',
        message: `sector 0 ends with 55 AA but partition entry ${(entry - 446) / 16 + 1} has status byte 0x${sector[entry]!.toString(16)}`,
      });
      return;
    }
  }
  const value = sector.readUInt32LE(SIGNATURE_OFFSET).toString(16).padStart(8, '0');
  out.fields.set(FIELD, { value, raw: value, style: '' });
  // Opt-in: the guest's files name it. Linux's PARTUUID of an MBR partition is `<signature>-<NN>`
  // (fstab, root=PARTUUID=), and Windows's boot configuration and MountedDevices key on it.
  out.optIn.add(FIELD);
}

export function restoreMbr(view: ContainerView, value: string): void {
  if (!/^[0-9a-f]{8}$/i.test(value)) throw INVALID_ARGUMENT(`not an MBR disk signature: ${value}`);
  const next = Buffer.alloc(4);
  next.writeUInt32LE(Number.parseInt(value, 16) >>> 0, 0);
  writeChanged(view, SIGNATURE_OFFSET, view.read(SIGNATURE_OFFSET, 4), next);
}
