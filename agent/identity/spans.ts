/** Identity values inside a text file: where each one is, and how to write a value in its place. */
import type { FieldValue } from './fields';
import type { NamedItem } from './pair-by-name';

export interface ValueSpan {
  field: string;
  value: FieldValue;
  /** Character offsets of the value's text in the file (quotes excluded unless the encoder writes them). */
  start: number;
  end: number;
  /** The text to put in [start, end) for a value. */
  encode(value: FieldValue): string;
  /** Why a value cannot be written there (a plain YAML scalar cannot hold `: `); null or absent when it can. */
  cannotHold?(value: FieldValue): string | null;
  /** Set when the value points at storage or a network (references.ts): the target's is always kept. */
  reference?: ReferenceInfo;
  /** Set on a whole list's node (its items are spans of their own): written only when its length differs. */
  list?: true;
}

/** What a reference names, and how to write it with other names (a mapping to the target's own). */
export interface ReferenceInfo {
  /** The names in it that point at a disk, file, network, socket or port (decoded); [] when it names nothing. */
  names: string[];
  /** The span's text with each name replaced by `map(name)` (re-encoded for its context). */
  rewrite(map: (name: string) => string): string;
  /** The device it belongs to (`libvirt.disk.vda`, `ethernet1`). */
  device?: string;
  /** A target that has the device but not this reference gets it taken out (libvirt: an element or attribute). */
  removable?: boolean;
  /** Whether `value` may be written in place of the name `name` (a mapped PCI address must be one). */
  accepts?(name: string, value: string): boolean;
  /** The reference is a whole device (a host device): taking it out is warned about. */
  wholeDevice?: boolean;
  /** libvirt makes it anew when the VM starts (a tap device's name): a clone has the source's taken out. */
  madeAtStart?: boolean;
  /**
   * A fixed port on the host (a display's VNC port): two VMs cannot share one, so a target without its
   * own has the source's taken out (libvirt then picks a free one), never kept.
   */
  hostPort?: boolean;
  /**
   * Names of the server that exports the reference's other names (an NBD disk's `<host>` socket):
   * where another name is mapped to a member of the target, the same server exports it, so these stay.
   */
  serverNames?: string[];
  /**
   * References of one device that only mean something together (a .vmx NIC's backing keys, a drive's
   * deviceType and fileName): a target that has any of them gets its whole set written back.
   */
  unit?: string;
  /**
   * The whole line of an identity field (a .vmx NIC's MAC): written back with the target's unit; a unit
   * the target has none of is left to the identity restore (a fresh MAC), and not reported here.
   */
  identityLine?: true;
  /** A unit the target has none of is taken out (with a warning), never kept or mapped (cloud-init's guestinfo). */
  removeUnlessTargetHas?: boolean;
}

/** A parsed config: the value spans, per-field problems, or why the whole file cannot be used. */
export type ParsedConfig =
  | {
      ok: true;
      spans: ValueSpan[];
      /** `refusesSync`: a synced config with this problem cannot be made the target's (hooks.ts refuses it). */
      problems: Array<{ field: string; message: string; refusesSync?: true }>;
      /** Devices found (`libvirt.disk.vda`), for references that a device of the target lacks. */
      devices?: string[];
      /** Numbered items that pair by name where both sides name them (ENI stanzas: pair-by-name.ts). */
      named?: NamedItem[];
    }
  | { ok: false; error: string };

/** Replaces the spans of the given fields, keeping every other character as it was. */
export function replaceSpans(text: string, spans: ValueSpan[], wanted: Map<string, FieldValue>): string {
  const parts: string[] = [];
  let at = 0;
  for (const span of [...spans].sort((a, b) => a.start - b.start)) {
    const value = wanted.get(span.field);
    // A list's node and its items overlap: only one of them is ever asked for (hooks.ts).
    if (value === undefined || span.start < at) continue;
    parts.push(text.slice(at, span.start), span.encode(value));
    at = span.end;
  }
  parts.push(text.slice(at));
  return parts.join('');
}

/** Keeps the writer's exact bytes when the context is the same; otherwise encodes for this one. */
export const sameStyleOr =
  (style: string, encode: (value: string) => string) =>
  (v: FieldValue): string =>
    v.style === style ? v.raw : encode(v.value);
