/**
 * The cost-of-depth table: each server's time per request at depth N over its
 * own at depth 1, repetition against repetition; multi-disk layouts and
 * nbdcopy cases are not compared.
 */
import * as assert from 'node:assert/strict';
import { depthCosts } from '../../bench/nbd/depth-cost';
import type { BenchReport, CaseReport, LayoutReport, Run } from '../../bench/nbd/report';
import { renderMarkdown } from '../../bench/nbd/table';

const layout = (id: string, depth: number, disks = 1): LayoutReport => ({
  id,
  depthRequested: depth,
  depth,
  disks,
  buildSeconds: { snapsync: 1, qcow2: 1 },
});

function speedCase(
  layoutId: string,
  values: Record<string, number[]>,
  group: CaseReport['group'] = 'fio',
): CaseReport {
  const runs: Run[] = Object.entries(values).flatMap(([server, vs]) =>
    vs.map((value, rep) => ({ server, rep, position: 0, value, raw: {}, loadavg: '0.00' })),
  );
  return {
    id: `${layoutId}/randread-4k-qd1/warm`,
    group,
    layout: layoutId,
    workload: 'randread-4k-qd1',
    cache: 'warm',
    unit: 'IOPS',
    servers: Object.keys(values),
    runs,
    medians: {},
    ratios: {},
  };
}

function report(layouts: LayoutReport[], cases: CaseReport[]): BenchReport {
  return {
    version: 1,
    complete: true,
    startedAt: '',
    finishedAt: '',
    machine: { nproc: 2, cpu: 'x', memMiB: 1, kernel: 'k', loadavgBefore: '0', loadavgAfter: '0', tools: {} },
    config: { sizeMiB: 16, reps: 3, runtime: 1, ramp: 0 },
    notes: [],
    layouts,
    cases,
  };
}

describe('bench:nbd cost of depth', () => {
  it('pairs each repetition at depth N with the same repetition at depth 1, per server', () => {
    const r = report(
      [layout('depth-1', 1), layout('depth-8', 8), layout('clients-4', 1, 4)],
      [
        speedCase('depth-1', { snapsync: [100, 100, 100], qemu: [90, 90, 90] }),
        speedCase('depth-8', { snapsync: [50, 100, 200], qemu: [9, 9, 9] }),
        speedCase('clients-4', { snapsync: [1, 1, 1], qemu: [1, 1, 1] }),
        // Not fio: never set against the depth-1 fio case, whatever its workload is called.
        speedCase('depth-8', { snapsync: [1, 1, 1], qemu: [1, 1, 1] }, 'nbdcopy'),
      ],
    );
    const costs = depthCosts(r);
    assert.equal(costs.length, 1);
    assert.equal(costs[0]!.layout, 'depth-8');
    assert.deepEqual(costs[0]!.costs.snapsync, { median: 1, min: 0.5, max: 2, perRep: [2, 1, 0.5] });
    assert.equal(costs[0]!.costs.qemu!.median, 10);
    assert.match(
      renderMarkdown(r),
      /\| depth 8 \| randread-4k-qd1 \| warm \| 1\.00× \(0\.50–2\.00\) \| 10\.00× \(10\.00–10\.00\) \|/,
    );
  });

  it('has nothing to compare without a depth-1 disk', () => {
    const r = report([layout('depth-8', 8)], [speedCase('depth-8', { snapsync: [1] })]);
    assert.deepEqual(depthCosts(r), []);
    assert.doesNotMatch(renderMarkdown(r), /Cost of depth/);
  });
});
