/**
 * bench:nbd end to end at toy size, so it cannot rot: the real agent, real
 * qemu-nbd, fio, nbdcopy and qemu-img, one repetition of a few cases. Checks
 * the report has every case with a figure from every server, that the printed
 * table is what bench/nbd/table.ts makes of the JSON, and nothing about speed.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BenchReport } from '../../bench/nbd/report';
import { renderMarkdown } from '../../bench/nbd/table';
import { tempDir } from '../helpers/tmp';

const ROOT = path.resolve(__dirname, '../..');

describe('bench:nbd (smoke)', () => {
  it('runs every requested case against every server and reports each figure', function () {
    this.timeout(120_000);
    const dir = tempDir('snapsync-bench-smoke-');
    const out = path.join(dir, 'report.json');
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'bench/nbd/run.ts'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: {
        ...process.env,
        BENCH_NBD_SIZE: '16',
        BENCH_NBD_RUNTIME: '0.2',
        BENCH_NBD_RAMP: '0',
        BENCH_NBD_REPS: '1',
        BENCH_NBD_DEPTHS: '3',
        BENCH_NBD_CLIENTS: '2',
        BENCH_NBD_WORKLOADS: 'randread-4k-qd1,seqwrite-1m-qd8',
        BENCH_NBD_SYNC_REPS: '2',
        BENCH_NBD_COPY_REPS: '2',
        BENCH_NBD_DIR: dir,
        BENCH_NBD_OUT: out,
      },
    });
    assert.equal(run.status, 0, run.stderr);
    const report = JSON.parse(fs.readFileSync(out, 'utf8')) as BenchReport;

    const uringLeftOut = report.notes.some((n) => n.includes('io_uring does not work here'));
    const peers = ['qemu-nbd --aio=threads', ...(uringLeftOut ? [] : ['qemu-nbd --aio=io_uring'])];
    const expected = [
      ...['depth-3', 'clients-2'].flatMap((layout) =>
        ['randread-4k-qd1', 'seqwrite-1m-qd8'].flatMap((w) =>
          ['warm', 'cold'].map((cache) => `${layout}/${w}/${cache}`),
        ),
      ),
      ...['in', 'out'].flatMap((d) => ['warm', 'cold'].map((cache) => `depth-3/nbdcopy-${d}/${cache}`)),
      'depth-3/sync-cli',
      'depth-3/sync-op',
    ];
    assert.deepEqual(report.cases.map((c) => c.id).sort(), [...expected].sort());
    for (const c of report.cases) {
      const servers = c.group === 'sync' ? c.servers : ['snapsync', ...peers];
      assert.deepEqual(c.servers, servers, c.id);
      for (const s of servers) {
        const runs = c.runs.filter((r) => r.server === s);
        // fio cases: BENCH_NBD_REPS; sync and nbdcopy: their own counts.
        assert.equal(runs.length, c.group === 'fio' ? 1 : 2, `${c.id} ${s}`);
        assert.ok(
          runs.every((r) => r.value > 0 && r.loadavg.length > 0),
          `${c.id} ${s}`,
        );
        assert.ok(c.medians[s]! > 0, `${c.id} ${s}`);
        if (s !== 'snapsync') assert.ok(c.ratios[s]!.median > 0, `${c.id} ${s}`);
      }
    }
    // Cold means cold: what the page cache holds of the layout's files is a few pages, not the disk.
    for (const c of report.cases.filter((x) => x.cache === 'cold' && x.group === 'fio'))
      for (const r of c.runs) assert.ok(r.residentBytes! < 4 * 1024 * 1024, `${c.id} ${r.server}`);
    assert.deepEqual(
      report.layouts.map((l) => [l.id, l.depth, l.disks]),
      [
        ['depth-3', 3, 1],
        ['clients-2', 1, 2],
      ],
    );
    assert.equal(report.complete, true);
    assert.match(report.machine.loadavgBefore, /^\d/);
    assert.ok(report.machine.nproc >= 1);
    assert.equal(run.stdout, renderMarkdown(report));
  });
});
