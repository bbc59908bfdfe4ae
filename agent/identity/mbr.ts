/**
 * MBR disk signature: 4 bytes at byte 440, present when the sector ends with
 * the 0x55AA boot signature (also on GPT disks' protective MBR).
 */
import type { ContainerView } from '../engine';
import type { Extracted } from './fields';

const SIGNATURE_OFFSET = 440;

export function extractMbr(view: ContainerView, out: Extracted): void {
  if (view.size() < 512) return;
  const sector = view.read(0, 512);
  if (sector[510] !== 0x55 || sector[511] !== 0xaa) return;
  out.fields.set('mbr.signature', sector.readUInt32LE(SIGNATURE_OFFSET).toString(16).padStart(8, '0'));
}

export function restoreMbr(view: ContainerView, value: string): void {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32LE(Number.parseInt(value, 16) >>> 0, 0);
  view.write(SIGNATURE_OFFSET, bytes);
}
