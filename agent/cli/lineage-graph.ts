/**
 * The pool's tables as a graph, drawn like `git log --graph`: each branch (a
 * container synced to or cloned from a snapshot, or a container's own current
 * table) in a lane of its own, above the snapshot it reads through and
 * merging into it. Built from each data container's lineage.
 */
import type { LineageEntry } from '../../schema';

export interface GraphNode {
  table: number;
  /** `name@snapshot` (hidden ones marked) or `name (current)`. */
  label: string;
  createdAt: string | null;
  /** The table it reads through, or null for a root. */
  parent: number | null;
}

/** Merges lineages (current table first, as the agent answers) into one node per table. */
export function graphOf(
  lineages: Array<{ container: string; lineage: LineageEntry[] }>,
): Map<number, GraphNode> {
  const nodes = new Map<number, GraphNode>();
  for (const { container, lineage } of lineages) {
    lineage.forEach((entry, i) => {
      if (nodes.has(entry.table)) return;
      const s = entry.snapshot;
      nodes.set(entry.table, {
        table: entry.table,
        label: s ? `${s.container}@${s.name}${s.hidden ? ' (hidden)' : ''}` : `${container} (current)`,
        createdAt: s?.createdAt ?? null,
        parent: lineage[i + 1]?.table ?? null,
      });
    });
  }
  return nodes;
}

/** The root a table descends from. */
export function rootOf(nodes: Map<number, GraphNode>, table: number): number {
  let t = table;
  for (let parent = nodes.get(t)?.parent; parent != null; parent = nodes.get(t)?.parent) t = parent;
  return t;
}

/**
 * Draws the trees under `roots`, leaves on top. Tables on `highlight` (a
 * container's own chain) are drawn `*` down the left lane, the others `o`.
 */
export function drawGraph(
  nodes: Map<number, GraphNode>,
  roots: number[],
  highlight = new Set<number>(),
): string {
  const children = new Map<number, number[]>();
  for (const node of nodes.values()) {
    if (node.parent === null) continue;
    children.set(node.parent, [...(children.get(node.parent) ?? []), node.table]);
  }
  const lines: string[] = [];
  // Children first (the first keeps this lane, the others open lanes to its right), then a merge, then the node.
  const draw = (table: number, lanes: number) => {
    // The marked chain keeps the left lane; then the newest table first.
    const kids = (children.get(table) ?? []).sort(
      (a, b) => Number(highlight.has(b)) - Number(highlight.has(a)) || b - a,
    );
    const left = '| '.repeat(lanes);
    kids.forEach((kid, i) => {
      draw(kid, lanes + (i === 0 ? 0 : 1));
      if (i > 0) lines.push(`${left}|/`);
    });
    const node = nodes.get(table)!;
    const mark = highlight.has(table) ? '*' : 'o';
    lines.push(`${left}${mark} ${node.label}${node.createdAt ? `  ${node.createdAt}` : ''}`);
  };
  roots.forEach((root, i) => {
    if (i > 0) lines.push('');
    draw(root, 0);
  });
  return lines.join('\n');
}
