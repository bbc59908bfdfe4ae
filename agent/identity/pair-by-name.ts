/**
 * Items a parser numbers in document order (ENI stanzas: eni.ts) pair by number across the two
 * sides. Where both sides name the same item once (`iface eth1 …` on each), the synced side's
 * fields are renumbered to the target's number for it, so that staging's eth1 values go into
 * production's eth1 stanza whatever their order; the other items still pair in order among
 * themselves, and one only the synced side has gets a number the target does not use.
 */
import type { Content } from './content';
import type { FieldValue } from './fields';

/** An item's fields are `<group>.<index>.…`. */
export interface NamedItem {
  group: string;
  index: number;
  name: string;
}

/** For each of `after`'s items, by its `<group>.<index>`, the prefix it pairs with on `before`'s side. */
function pairing(before: NamedItem[], after: NamedItem[]): Map<string, string> {
  const renamed = new Map<string, string>();
  for (const group of new Set(after.map((item) => item.group))) {
    const mine = before.filter((item) => item.group === group);
    const theirs = after.filter((item) => item.group === group);
    const once = (items: NamedItem[], name: string) =>
      items.filter((item) => item.name === name).length === 1;
    const byName = (item: NamedItem) =>
      once(mine, item.name) && once(theirs, item.name) ? mine.find((m) => m.name === item.name) : undefined;
    const taken = new Set(theirs.map((item) => byName(item)?.index).filter((i) => i !== undefined));
    const free = mine.map((item) => item.index).filter((i) => !taken.has(i));
    let next = Math.max(-1, ...mine.map((item) => item.index)) + 1;
    for (const item of theirs) {
      const index = byName(item)?.index ?? free.shift() ?? next++;
      renamed.set(`${group}.${item.index}`, `${group}.${index}`);
    }
  }
  return renamed;
}

/** Renumbers `after`'s fields (and the spans that write them) to pair with `before`'s items by name. */
export function pairByName(before: Content, after: Content): void {
  const renamed = pairing(before.named ?? [], after.named ?? []);
  if ([...renamed].every(([from, to]) => from === to)) return;
  const rename = (field: string): string => {
    const prefix = [...renamed.keys()].find((p) => field.startsWith(`${p}.`));
    return prefix === undefined ? field : renamed.get(prefix)! + field.slice(prefix.length);
  };
  const renameMap = (map: Map<string, FieldValue>) => new Map([...map].map(([f, v]) => [rename(f), v]));
  after.fields = renameMap(after.fields);
  after.lists = renameMap(after.lists);
  after.optIn = new Set([...after.optIn].map(rename));
  after.problems = after.problems.map((p) => (p.field === null ? p : { ...p, field: rename(p.field) }));
  if (after.config)
    after.config = {
      ...after.config,
      spans: after.config.spans.map((s) => ({ ...s, field: rename(s.field) })),
    };
}
