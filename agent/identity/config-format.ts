/**
 * A VM config file's format: declared by the file container's label
 * `snapsync.io/config-format` (vmx | libvirt | cloud-init | network-config), or detected from
 * its content; and the identity spans in it.
 */
import { looksLikeCloudInit, parseCloudInit } from './cloud-init';
import { looksLikeLibvirt, parseLibvirt } from './libvirt-xml';
import { looksLikeNetworkConfig, parseNetworkConfig } from './network-config';
import type { ParsedConfig } from './spans';
import { looksLikeVmx, parseVmx } from './vmx';

export const CONFIG_FORMATS = ['vmx', 'libvirt', 'cloud-init', 'network-config'] as const;
export type ConfigFormat = (typeof CONFIG_FORMATS)[number];
export const FORMAT_LABEL = 'snapsync.io/config-format';

export const isConfigFormat = (value: string): value is ConfigFormat =>
  (CONFIG_FORMATS as readonly string[]).includes(value);

/** A VM's `config` member, or any member whose label declares a format, must be read as a config. */
export const isDeclaredConfig = (role: string | null, labels: Record<string, string>): boolean =>
  role === 'config' || labels[FORMAT_LABEL] !== undefined;

export function detectFormat(text: string): ConfigFormat | null {
  if (looksLikeLibvirt(text)) return 'libvirt';
  if (looksLikeVmx(text)) return 'vmx';
  if (looksLikeNetworkConfig(text)) return 'network-config';
  if (looksLikeCloudInit(text)) return 'cloud-init';
  return null;
}

export function parseConfig(format: ConfigFormat, text: string): ParsedConfig {
  switch (format) {
    case 'vmx':
      return parseVmx(text);
    case 'libvirt':
      return parseLibvirt(text);
    case 'cloud-init':
      return parseCloudInit(text);
    case 'network-config':
      return parseNetworkConfig(text);
  }
}
