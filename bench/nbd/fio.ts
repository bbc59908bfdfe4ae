/**
 * One measured fio run: `fio --ioengine=nbd`, one job (one NBD connection)
 * per export, all at once, aggregated (group_reporting). The same command for
 * both servers; only the URIs differ. Cost: the run's time plus fio's start.
 */
import * as fs from 'node:fs';
import { WORKLOADS, type WorkloadName } from './config';
import { exec } from './procs';

export interface FioFigures {
  iops: number;
  mibPerSec: number;
  latMeanUs: number;
  latP99Us: number;
  /** Milliseconds fio measured (after its ramp). */
  runtimeMs: number;
}

export async function runFio(
  uris: string[],
  workload: WorkloadName,
  sizeBytes: number,
  runtimeSec: number,
  rampSec: number,
  outFile: string,
): Promise<FioFigures> {
  const w = WORKLOADS[workload];
  const global = [
    '--ioengine=nbd',
    `--rw=${w.rw}`,
    `--bs=${w.bs}`,
    `--iodepth=${w.iodepth}`,
    `--size=${sizeBytes}`,
    `--runtime=${Math.round(runtimeSec * 1000)}ms`,
    `--ramp_time=${Math.round(rampSec * 1000)}ms`,
    '--time_based',
    '--group_reporting',
    '--output-format=json',
    `--output=${outFile}`,
  ];
  const jobs = uris.flatMap((uri, i) => [`--name=disk${i}`, `--uri=${uri}`]);
  await exec('fio', [...global, ...jobs]);
  const job = JSON.parse(fs.readFileSync(outFile, 'utf8')).jobs[0];
  const side = w.rw.includes('write') ? job.write : job.read;
  return {
    iops: side.iops,
    mibPerSec: side.bw / 1024,
    latMeanUs: side.lat_ns.mean / 1000,
    latP99Us: (side.clat_ns.percentile?.['99.000000'] ?? 0) / 1000,
    runtimeMs: side.runtime,
  };
}
