/**
 * References in a .vmx: the keys whose values name the VM's storage, networks
 * and per-VM files. A sync keeps the target's (references.ts); the paths are
 * the keys' canonical spellings (keys are case-insensitive).
 *
 * Some keys only mean something together, so they are written back as one
 * unit (the target's whole set of them): a NIC's backing (a standard port
 * group, a vnet, a distributed switch port, an NSX-T segment and port), a
 * drive's deviceType, startConnected and clientDevice with its fileName (a
 * `cdrom-image` names an ISO, an `atapi-cdrom` a host drive), a serial/parallel port's fileType with its
 * fileName, cloud-init's guestinfo data (metadata, userdata, vendordata
 * and their encodings: the VM's network config, hostname and instance-id),
 * and a NIC's MAC keys (addressType with the address or generatedAddress it
 * uses, generatedAddressOffset, checkMACAddress: a static MAC stays static).
 * The MAC's own value is an identity field (vmx.ts); its whole line is also a
 * reference of the MAC unit (`ethernetN.address.line`), so the target's key is
 * written back with its value when production's NIC uses the other key.
 */

/** A reference key's canonical path, and the unit it belongs to. */
interface Pattern {
  re: RegExp;
  name: (m: RegExpExecArray) => string;
  unit?: string;
}

const BACKING = 'backing';
/** cloud-init's VMware datasource: production's network config, hostname and instance-id (base64 or plain). */
export const CLOUD_INIT_UNIT = 'cloud-init';
/**
 * Files ESXi names when the VM powers on (its swap file, its migration log, its stats): a staging VM
 * that never ran has none, and gets its own at power-on, so production's are taken out, not mapped.
 */
export const ESXI_RUNTIME_UNIT = 'esxi-runtime';
/** A NIC's MAC: its addressType and the keys that hold or shape its address. */
export const MAC_UNIT = 'mac';
/** The reference path of a MAC key's whole line (the value itself is the identity field of the key's name). */
export const macLine = (field: string): string => `${field}.line`;

const nic = (suffix: string, canonical: string, unit = BACKING): Pattern => ({
  re: new RegExp(`^ethernet(\\d+)\\.${suffix.replace(/\./g, '\\.')}$`),
  name: (m) => `ethernet${m[1]}.${canonical}`,
  unit,
});

const PATTERNS: Pattern[] = [
  // disks and CD/DVD images on every controller, with the kind of backing their fileName is
  {
    re: /^(scsi|sata|ide|nvme)(\d+):(\d+)\.filename$/,
    name: (m) => `${m[1]}${m[2]}:${m[3]}.fileName`,
    unit: BACKING,
  },
  ...['deviceType', 'startConnected', 'clientDevice'].map(
    (key): Pattern => ({
      re: new RegExp(`^(scsi|sata|ide|nvme)(\\d+):(\\d+)\\.${key.toLowerCase()}$`),
      name: (m) => `${m[1]}${m[2]}:${m[3]}.${key}`,
      unit: BACKING,
    }),
  ),
  nic('networkname', 'networkName'),
  nic('vnet', 'vnet'),
  nic('connectiontype', 'connectionType'),
  nic('dvs.switchid', 'dvs.switchId'),
  nic('dvs.portgroupid', 'dvs.portgroupId'),
  nic('dvs.portid', 'dvs.portId'),
  nic('dvs.connectionid', 'dvs.connectionId'),
  // NSX-T: the segment, its kind, and the logical port
  nic('opaquenetwork.id', 'opaqueNetwork.id'),
  nic('opaquenetwork.type', 'opaqueNetwork.type'),
  nic('externalid', 'externalId'),
  nic('addresstype', 'addressType', MAC_UNIT),
  nic('generatedaddressoffset', 'generatedAddressOffset', MAC_UNIT),
  nic('checkmacaddress', 'checkMACAddress', MAC_UNIT),
  { re: /^(serial|parallel)(\d+)\.filename$/, name: (m) => `${m[1]}${m[2]}.fileName`, unit: BACKING },
  { re: /^(serial|parallel)(\d+)\.filetype$/, name: (m) => `${m[1]}${m[2]}.fileType`, unit: BACKING },
  {
    re: /^guestinfo\.(metadata|userdata|vendordata)(\.encoding)?$/,
    name: (m) => `guestinfo.${m[1]}${m[2] ?? ''}`,
    unit: CLOUD_INIT_UNIT,
  },
  { re: /^nvram$/, name: () => 'nvram' },
  { re: /^extendedconfigfile$/, name: () => 'extendedConfigFile' },
  { re: /^vmxstats\.filename$/, name: () => 'vmxstats.filename', unit: ESXI_RUNTIME_UNIT },
  { re: /^sched\.swap\.derivedname$/, name: () => 'sched.swap.derivedName', unit: ESXI_RUNTIME_UNIT },
  { re: /^migrate\.hostlog$/, name: () => 'migrate.hostLog', unit: ESXI_RUNTIME_UNIT },
  // other migrate.* keys that hold a path
  {
    re: /^(migrate\.[a-z0-9.]*(?:log|file|filename|path|dir|directory))$/,
    name: (m) => m[1]!,
    unit: ESXI_RUNTIME_UNIT,
  },
];

/** Keys whose values are a kind, not a name: nothing in them is mapped. */
const KINDS =
  /\.(devicetype|startconnected|clientdevice|filetype|connectiontype|opaquenetwork\.type|addresstype|generatedaddressoffset|checkmacaddress)$/;

/** The canonical path of a reference key and its unit, or null. */
export function vmxReference(key: string): { field: string; unit?: string; kind: boolean } | null {
  const lower = key.toLowerCase();
  for (const { re, name, unit } of PATTERNS) {
    const m = re.exec(lower);
    if (m) return { field: name(m), ...(unit ? { unit } : {}), kind: KINDS.test(lower) };
  }
  return null;
}

/** Values that name nothing (an empty CD drive, a host device picked at power-on). */
const NAMES_NOTHING = new Set(['', 'emptybackingstring', 'auto detect']);

export const vmxNames = (value: string): string[] => (NAMES_NOTHING.has(value.toLowerCase()) ? [] : [value]);
