/**
 * References in a .vmx: the keys whose values name the VM's storage, networks
 * and per-VM files. A sync keeps the target's (references.ts); the paths are
 * the keys' canonical spellings (keys are case-insensitive).
 */

const PATTERNS: Array<[RegExp, (m: RegExpExecArray) => string]> = [
  // disks and CD/DVD images on every controller
  [/^(scsi|sata|ide|nvme)(\d+):(\d+)\.filename$/, (m) => `${m[1]}${m[2]}:${m[3]}.fileName`],
  [/^ethernet(\d+)\.networkname$/, (m) => `ethernet${m[1]}.networkName`],
  [/^ethernet(\d+)\.vnet$/, (m) => `ethernet${m[1]}.vnet`],
  [/^ethernet(\d+)\.dvs\.switchid$/, (m) => `ethernet${m[1]}.dvs.switchId`],
  [/^ethernet(\d+)\.dvs\.portgroupid$/, (m) => `ethernet${m[1]}.dvs.portgroupId`],
  [/^ethernet(\d+)\.dvs\.portid$/, (m) => `ethernet${m[1]}.dvs.portId`],
  [/^ethernet(\d+)\.dvs\.connectionid$/, (m) => `ethernet${m[1]}.dvs.connectionId`],
  [/^(serial|parallel)(\d+)\.filename$/, (m) => `${m[1]}${m[2]}.fileName`],
  [/^nvram$/, () => 'nvram'],
  [/^extendedconfigfile$/, () => 'extendedConfigFile'],
  [/^vmxstats\.filename$/, () => 'vmxstats.filename'],
  [/^sched\.swap\.derivedname$/, () => 'sched.swap.derivedName'],
  [/^migrate\.hostlog$/, () => 'migrate.hostLog'],
  // other migrate.* keys that hold a path
  [/^(migrate\.[a-z0-9.]*(?:log|file|filename|path|dir|directory))$/, (m) => m[1]!],
];

/** The canonical path of a reference key, or null. */
export function vmxReference(key: string): string | null {
  const lower = key.toLowerCase();
  for (const [re, name] of PATTERNS) {
    const m = re.exec(lower);
    if (m) return name(m);
  }
  return null;
}

/** Values that name nothing (an empty CD drive, a host device picked at power-on). */
const NAMES_NOTHING = new Set(['', 'emptybackingstring', 'auto detect']);

export const vmxNames = (value: string): string[] => (NAMES_NOTHING.has(value.toLowerCase()) ? [] : [value]);
