/**
 * `snapsync-agent fsck --pool DIR`: the check without an agent, on the pool
 * directory itself (read-only; see engine/offline-fsck.ts). Exit codes as for
 * `fsck` through the agent: 0 clean, 4 problems, 1 when the pool cannot be
 * checked (its error code printed: UNSUPPORTED_VERSION, IO_ERROR, …).
 */
import type { FsckReport } from '../../engine';
import { fsckPoolDir } from '../../engine';
import { EXIT } from '../exit-codes';
import { reportPoolDirError } from '../pool-dir-error';

export async function fsckPool(
  dir: string,
  options: { json?: boolean; onProgress?: (done: number, total: number) => void },
  human: (report: FsckReport) => string,
): Promise<void> {
  try {
    const report = await fsckPoolDir(dir, options.onProgress);
    if (!report.ok) process.exitCode = EXIT.FSCK_PROBLEMS;
    process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : `${human(report)}\n`);
  } catch (err) {
    reportPoolDirError(err, options.json);
  }
}
