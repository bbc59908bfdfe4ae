/**
 * Disk wiring across a sync. A VM sync pairs members by role (staging-web-disk1
 * ← prod-web-disk1), so each device of the synced config must name the
 * target's member of the role that the source's device names: when production
 * wires vda to its disk1 and staging wired vda to its disk0, keeping staging's
 * vda would show the guest at vda the data production has at vdb. Such a device
 * takes the references of the target's own device (same kind) that named its
 * member of that role; without one, it is mapped as a device the target never
 * had. Only a device naming exactly one member on each side is rewired, and only
 * when both members are synced by this sync: a member left out still holds the
 * target's own data, which the target's own wiring fits.
 */
import type { ValueSpan } from './spans';
import { tokenOccurrences } from './tokens';

/** A role of the source VM: its member's container name, and the target's member of that role (null: none). */
export interface RoleMember {
  role: string;
  source: string;
  target: string | null;
  /** This sync gives the target's member of this role the source member's data. */
  synced: boolean;
}

export interface Rewire {
  /** The role the source's device names, and the members of that role. */
  role: string;
  source: string;
  target: string;
  /** The role the target's device named. */
  targetHad: string;
  /** The target's device whose references this device takes; null: none named the member (map the source's). */
  from: string | null;
}

/** The one role whose member `names` name (a longer member name inside a match wins); null: none or several. */
function namedRole(names: string[], members: Array<{ role: string; name: string | null }>): string | null {
  const roles = new Set<string>();
  for (const text of names) {
    const hits = members.flatMap(({ role, name }) =>
      name ? tokenOccurrences(text, name).map((at) => ({ role, at, end: at + name.length })) : [],
    );
    for (const h of hits) {
      const inLonger = hits.some(
        (o) => o !== h && o.at <= h.at && o.end >= h.end && o.end - o.at > h.end - h.at,
      );
      if (!inLonger) roles.add(h.role);
    }
  }
  return roles.size === 1 ? [...roles][0]! : null;
}

/** Every name in each device's references. */
function namesByDevice(references: Map<string, ValueSpan>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const span of references.values()) {
    const { device, names } = span.reference!;
    if (device) out.set(device, [...(out.get(device) ?? []), ...names]);
  }
  return out;
}

/** Devices of one kind: `libvirt.disk.vda` and `libvirt.disk.vdb` (keyed by target dev), `scsi0:0` and `scsi0:1`. */
const kind = (device: string) =>
  device.startsWith('libvirt.disk.') ? 'libvirt.disk' : device.replace(/\d+(:\d+)?$/, '');

/** Per device of the synced config that the target wired to another member: where its references come from. */
export function rewiring(
  before: Map<string, ValueSpan>,
  after: Map<string, ValueSpan>,
  members: RoleMember[],
): Map<string, Rewire> {
  const sourceMembers = members.map((m) => ({ role: m.role, name: m.source }));
  const targetMembers = members.map((m) => ({ role: m.role, name: m.target }));
  const synced = new Map(members.filter((m) => m.synced && m.target).map((m) => [m.role, m]));
  const targetDevices = namesByDevice(before);
  const out = new Map<string, Rewire>();
  for (const [device, names] of namesByDevice(after)) {
    const had = targetDevices.get(device);
    if (!had) continue;
    const role = namedRole(names, sourceMembers);
    const targetHad = namedRole(had, targetMembers);
    if (role === null || targetHad === null || role === targetHad) continue;
    const member = synced.get(role);
    if (!member || !synced.has(targetHad)) continue;
    const from =
      [...targetDevices].find(
        ([other, otherNames]) =>
          kind(other) === kind(device) && namedRole(otherNames, targetMembers) === role,
      )?.[0] ?? null;
    out.set(device, { role, source: member.source, target: member.target!, targetHad, from });
  }
  return out;
}

/**
 * A source path renamed for the target's member (`replaced`), placed where the target keeps its own
 * member files: a name with a directory gets the one directory that the target's own references
 * naming its members use (`/vmfs/volumes/stage-ds/app/` for production's `/vmfs/volumes/prod-ds/app/`),
 * never the source's datastore or folder (a bare `staging-app-disk0.vmdk` is in the VM's own directory:
 * so is the new one); a bare source file name stays bare.
 * Null when the target's member files are in no single directory, or the member's name is not in the
 * file name itself: then only the caller's map can say where it goes.
 */
export function inTargetPlace(
  replaced: string,
  member: string,
  targetNames: Iterable<string>,
  members: RoleMember[],
): string | null {
  const slash = replaced.lastIndexOf('/');
  if (slash < 0) return replaced;
  const file = replaced.slice(slash + 1);
  if (tokenOccurrences(file, member).length === 0) return null;
  const dirs = new Set<string>();
  for (const own of targetNames) {
    const at = own.lastIndexOf('/');
    const ownFile = own.slice(at + 1);
    // A bare name is a file in the VM's directory only when it has an extension (not an NBD export name).
    if (at < 0 && !/\.[A-Za-z0-9]+$/.test(ownFile)) continue;
    if (members.some((m) => m.target && tokenOccurrences(ownFile, m.target).length > 0))
      dirs.add(own.slice(0, at + 1));
  }
  return dirs.size === 1 ? [...dirs][0]! + file : null;
}
