/** Builds meta-write-fault.c (a failing disk under LMDB's meta pages) for an agent started with its environment. */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { tempDir } from './tmp';

export interface MetaWriteFault {
  /** For the agent's process: the shim preloaded, armed while `trigger` exists. */
  env: Record<string, string>;
  trigger: string;
}

export function buildMetaWriteFault(): MetaWriteFault {
  const dir = tempDir('snapsync-meta-fault-');
  const shim = path.join(dir, 'meta-write-fault.so');
  execFileSync('gcc', [
    '-shared',
    '-fPIC',
    '-O2',
    '-o',
    shim,
    path.join(__dirname, 'meta-write-fault.c'),
    '-ldl',
  ]);
  const trigger = path.join(dir, 'armed');
  return { env: { LD_PRELOAD: shim, SNAPSYNC_FAULT_META_WRITE: trigger }, trigger };
}
