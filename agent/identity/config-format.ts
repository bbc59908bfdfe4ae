/** Which config format a file is, from its content; and the identity spans in it. */
import { looksLikeCloudInit, parseCloudInit } from './cloud-init';
import { looksLikeLibvirt, parseLibvirt } from './libvirt-xml';
import type { ValueSpan } from './spans';
import { looksLikeVmx, parseVmx } from './vmx';

export type ConfigFormat = 'vmx' | 'libvirt' | 'cloud-init';

export function detectFormat(text: string): ConfigFormat | null {
  if (looksLikeLibvirt(text)) return 'libvirt';
  if (looksLikeVmx(text)) return 'vmx';
  if (looksLikeCloudInit(text)) return 'cloud-init';
  return null;
}

export function parseConfig(format: ConfigFormat, text: string): ValueSpan[] {
  return format === 'vmx' ? parseVmx(text) : format === 'libvirt' ? parseLibvirt(text) : parseCloudInit(text);
}
