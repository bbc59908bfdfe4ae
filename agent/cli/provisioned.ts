/** The pool's declared total against its capacity (thin provisioning), as `info` and `usage` print it. */
import { bytes } from './context';

export interface Provisioned {
  provisionedBytes: number;
  capacityBytes: number;
  overcommitRatio: number;
}

export function provisionedLine(p: Provisioned): string {
  const over =
    p.overcommitRatio > 1 ? ': OVERCOMMITTED, writes fail with OUT_OF_SPACE once the pool is full' : '';
  return `provisioned ${bytes(p.provisionedBytes)} of ${bytes(p.capacityBytes)} capacity (${p.overcommitRatio}×${over})`;
}
