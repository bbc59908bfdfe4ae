/**
 * The loop both model-based tests share: apply each operation to a real pool
 * and to the model; a refusal must carry the code the model predicts, and the
 * pool must read as the model says after every step, after a final reopen and
 * after reclaiming garbage.
 */
import * as assert from 'node:assert/strict';
import { isSnapsyncError, Pool } from '../../../agent/engine';
import { tempDir } from '../../helpers/tmp';

export interface ModelRun<Op extends { op: string }, M> {
  model: M;
  /** The error code the operation must fail with, or null; may resolve fields of `op` in place. */
  expect(model: M, op: Op): string | null;
  apply(pool: Pool, op: Op): Promise<void>;
  check(pool: Pool, model: M, step: number): Promise<void>;
  blockSize: number;
}

export async function runAgainstModel<Op extends { op: string }, M>(ops: Op[], run: ModelRun<Op, M>) {
  const dir = tempDir();
  let pool = Pool.create(dir, { blockSize: run.blockSize, capacityBytes: 4096 * run.blockSize });
  try {
    for (let [step, op] of ops.entries()) {
      if (op.op === 'reopen') {
        await pool.close();
        pool = Pool.open(dir);
      } else {
        op = { ...op }; // the model resolves offsets into its own copy
        const expected = run.expect(run.model, op);
        try {
          await run.apply(pool, op);
          assert.equal(null, expected, `step ${step}: ${JSON.stringify(op)} should fail with ${expected}`);
        } catch (err) {
          if (!isSnapsyncError(err)) throw err;
          assert.equal(err.code, expected, `step ${step}: ${JSON.stringify(op)}: ${err.message}`);
        }
      }
      await run.check(pool, run.model, step);
    }
    await pool.close();
    pool = Pool.open(dir);
    await run.check(pool, run.model, ops.length);
    pool.reclaim();
    await run.check(pool, run.model, ops.length + 1);
  } finally {
    await pool.close();
  }
}
