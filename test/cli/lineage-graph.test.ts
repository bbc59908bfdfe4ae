/** The `tree` drawing: branches in lanes of their own, newest first, merging into the snapshot they read through. */
import * as assert from 'node:assert/strict';
import { drawGraph, graphOf, rootOf } from '../../agent/cli/lineage-graph';
import type { LineageEntry, Snapshot } from '../../schema';

const snap = (table: number, container: string, name: string, hidden = false): LineageEntry => ({
  table,
  kind: 'snapshot',
  snapshot: { container, name, hidden, createdAt: `t${table}` } as Snapshot,
});
const current = (table: number): LineageEntry => ({ table, kind: 'current', snapshot: null });

describe('lineage graph (snapsync-agent tree)', () => {
  // prod: n1 (table 1) → n2 (table 3) → current 5; staging synced to n2 (current 6, its old safety snapshot
  // table 2 reads through n1); a clone of n1 (current 4).
  const lineages = [
    { container: 'prod', lineage: [current(5), snap(3, 'prod', 'n2'), snap(1, 'prod', 'n1')] },
    { container: 'staging', lineage: [current(6), snap(3, 'prod', 'n2'), snap(1, 'prod', 'n1')] },
    { container: 'clone', lineage: [current(4), snap(1, 'prod', 'n1')] },
    { container: 'old', lineage: [current(7), snap(2, 'staging', 'safety-g1', true), snap(1, 'prod', 'n1')] },
  ];
  const nodes = graphOf(lineages);

  it('merges the lineages into one node per table, each with its parent', () => {
    assert.deepEqual(
      [...nodes.values()]
        .map((n) => [n.table, n.label, n.parent])
        .sort((a, b) => Number(a[0]) - Number(b[0])),
      [
        [1, 'prod@n1', null],
        [2, 'staging@safety-g1 (hidden)', 1],
        [3, 'prod@n2', 1],
        [4, 'clone (current)', 1],
        [5, 'prod (current)', 3],
        [6, 'staging (current)', 3],
        [7, 'old (current)', 2],
      ],
    );
    assert.equal(rootOf(nodes, 6), 1);
  });

  it('draws each branch in its own lane above the snapshot it reads through; the chain asked for on the left', () => {
    const staging = new Set([6, 3, 1]);
    assert.equal(
      drawGraph(nodes, [1], staging),
      [
        '* staging (current)',
        '| o prod (current)',
        '|/',
        '* prod@n2  t3',
        '| o clone (current)',
        '|/',
        '| o old (current)',
        '| o staging@safety-g1 (hidden)  t2',
        '|/',
        '* prod@n1  t1',
      ].join('\n'),
    );
  });
});
