/**
 * Fresh values for identity the target never had. A sync restores the
 * target's own MACs and UUIDs; but a NIC, disk or UUID that only the source
 * has (production gained a NIC, a disk without a label got one) would
 * otherwise stay production's: a duplicate MAC on the staging network, a
 * second disk with production's GUID on the host. Such a value is replaced by
 * one derived from the target's container UUID and the source's value, so it
 * is unique to the target, and the same at every refresh (a DHCP reservation
 * for it keeps working), and every field holding the same source value in one
 * sync gets the same fresh value (a NIC's MAC in the VM config and in the
 * cloud-init network-config that matches on it).
 *
 * Only identifiers are made fresh: names, hostnames and addresses cannot be
 * invented, so those stay the source's and are warned about
 * (IDENTITY_FROM_SOURCE).
 */
import { createHash } from 'node:crypto';

/** The kinds of identifier a fresh value can be made for. */
export type UniqueKind = 'mac' | 'uuid' | 'serial';

// Field paths without the member's role prefix; .vmx keys compare case-insensitively.
const MAC_FIELD =
  /^(?:ethernet\d+\.(?:generatedaddress|address)|libvirt\.interface\d+\.mac|netcfg\..*\.(?:macaddress|mac_address)|cloudinit\.network-interfaces\.(?:inet6\.)?\d+\.hwaddress)$/i;
const UUID_FIELD =
  /^(?:uuid\.bios|uuid\.location|vc\.uuid|libvirt\.uuid|libvirt\.sysinfo\.system\.uuid|gpt\.diskguid|mbr\.signature)$/i;
// cloud-init re-runs its per-instance set-up (host keys, hostname) only for an instance-id it has not seen.
const SERIAL_FIELD = /^(?:libvirt\.sysinfo\.\w+\.serial|cloudinit\.instance-id)$/i;

/** The kind of identifier a field holds, or null when it is not one a fresh value can be made for. */
export function uniqueKind(field: string): UniqueKind | null {
  if (MAC_FIELD.test(field)) return 'mac';
  if (UUID_FIELD.test(field)) return 'uuid';
  if (SERIAL_FIELD.test(field)) return 'serial';
  return null;
}

/**
 * VMware's OUI, split by the fourth octet's top two bits: static MACs must lie in 00:50:56:00–3F,
 * vCenter assigns (addressType "vpx") from 00:50:56:80–BF. A fresh value stays in the source's range.
 */
const VMWARE_OUI = '005056';

/**
 * Fresh values for one sync. `seed` is the target's container UUID; `taken`
 * holds every identity value of the target before the sync, which no fresh
 * value may equal (nor the source's value it replaces, nor another fresh one).
 */
export class FreshIdentity {
  private readonly taken: Set<string>;
  /** The same values as written (lower case): a serial number is compared as text. */
  private readonly takenText: Set<string>;
  /** kind and source digits → the fresh value's digits, so one source value gets one fresh value. */
  private readonly made = new Map<string, string>();

  constructor(
    private readonly seed: string,
    taken: Iterable<string>,
  ) {
    const values = [...taken];
    this.taken = new Set(values.map(hexDigits));
    this.takenText = new Set(values.map((v) => v.toLowerCase()));
  }

  /**
   * A value of the same layout as `source` (its separators, digit count and
   * letter case): a MAC keeps the source's OUI (the hypervisor's vendor
   * range, unicast as before); a dashed UUID is a version-4 UUID. Null when
   * the value is not of a layout this knows (then the caller warns instead).
   */
  valueFor(kind: UniqueKind, source: string): string | null {
    // A serial number that is a UUID (Nova's) is one; any other is made anew character by character.
    if (kind === 'serial') return this.valueFor('uuid', source) ?? this.serialFor(source);
    const digits = hexDigits(source);
    if (!layoutKnown(kind, source, digits)) return null;
    const key = `${kind}:${digits}`;
    let fresh = this.made.get(key);
    for (let attempt = 0; fresh === undefined; attempt++) {
      const hash = createHash('sha256')
        .update(`snapsync fresh identity\0${this.seed}\0${kind}\0${digits}\0${attempt}`)
        .digest('hex');
      const made = kind === 'mac' ? freshMac(digits, hash) : freshUuid(source, digits.length, hash);
      if (made !== digits && !this.taken.has(made) && /[^0]/.test(made)) fresh = made;
    }
    this.made.set(key, fresh);
    this.taken.add(fresh);
    return layOut(source, fresh);
  }

  /** Each digit of `source` replaced by a digit, each letter by a letter of the same case; the rest kept. */
  private serialFor(source: string): string | null {
    if (!/^[\x20-\x7e]+$/.test(source) || !/[0-9A-Za-z]/.test(source)) return null;
    const key = `serial:${source}`;
    let fresh = this.made.get(key);
    for (let attempt = 0; fresh === undefined; attempt++) {
      const hash = createHash('sha256')
        .update(`snapsync fresh identity\0${this.seed}\0serial\0${source}\0${attempt}`)
        .digest();
      let at = 0;
      const made = source.replace(/[0-9A-Za-z]/g, (c) => {
        const byte = hash[at++ % hash.length]!;
        if (/\d/.test(c)) return String(byte % 10);
        const letter = String.fromCharCode(97 + (byte % 26));
        return /[A-Z]/.test(c) ? letter.toUpperCase() : letter;
      });
      if (made !== source && !this.takenText.has(made.toLowerCase())) fresh = made;
    }
    this.made.set(key, fresh);
    this.takenText.add(fresh.toLowerCase());
    return fresh;
  }
}

function layoutKnown(kind: UniqueKind, source: string, digits: string): boolean {
  // Every character a hex digit or a separator, so the layout can be kept.
  if (!/^[0-9a-f:.\- ]+$/i.test(source)) return false;
  if (kind === 'mac') return digits.length === 12 && (Number.parseInt(digits[1]!, 16) & 1) === 0;
  return digits.length === 32 || digits.length === 8;
}

function freshMac(digits: string, hash: string): string {
  const oui = digits.slice(0, 6);
  let nic = hash.slice(0, 6);
  if (oui === VMWARE_OUI) {
    const range = Number.parseInt(digits[6]!, 16) & 0xc;
    nic = ((Number.parseInt(nic[0]!, 16) & 0x3) | range).toString(16) + nic.slice(1);
  }
  return oui + nic;
}

function freshUuid(source: string, length: number, hash: string): string {
  const digits = hash.slice(0, length);
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(source)) return digits;
  // RFC 9562 version 4, variant 10xx: what a UUID generator would have given.
  const variant = ((Number.parseInt(digits[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${digits.slice(0, 12)}4${digits.slice(13, 16)}${variant}${digits.slice(17)}`;
}

/** `digits` put in `source`'s places, in its letter case. */
function layOut(source: string, digits: string): string {
  const upper = /[A-F]/.test(source) && !/[a-f]/.test(source);
  return substituteDigits(source, upper ? digits.toUpperCase() : digits);
}

/**
 * `text` with its hex digits replaced, in order, by those of `value`: a fresh
 * value written in the quoting the source's value had (its raw text), which
 * a YAML plain scalar needs (`52:54:00:12:34:56` unquoted is a base-60 number to YAML 1.1).
 */
export function substituteDigits(text: string, value: string): string {
  const digits = value.match(/[0-9a-f]/gi) ?? [];
  let at = 0;
  return text.replace(/[0-9a-f]/gi, () => digits[at++] ?? '');
}

/** The hex digits of a value, lower case. */
export const hexDigits = (value: string): string => value.replace(/[^0-9a-f]/gi, '').toLowerCase();
