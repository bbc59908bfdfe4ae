/**
 * What the NBD server needs from storage. Data calls are synchronous on
 * purpose: the engine is synchronous, and a promise per 4 KiB read costs more
 * than the read itself. Only flush waits on the disk.
 */

import type { SessionTarget } from './sessions';

/** One extent of base:allocation, in bytes. `hole` implies it reads as zeros too. */
export interface NbdExtent {
  offset: number;
  length: number;
  /** Nothing allocated here: reads zeros, writing may need space. */
  hole: boolean;
  /** Reads as zeros. */
  zero: boolean;
}

export interface NbdBackend {
  /** Export name as clients use it. */
  readonly name: string;
  /** Size in bytes, fixed for the session. */
  readonly size: number;
  readonly readOnly: boolean;
  /** Preferred I/O size (power of two, at least 512): requests this aligned avoid read-modify-write. */
  readonly blockSize: number;
  /** Fills `target` (exactly `target.length` bytes) from `offset`. */
  read(offset: number, target: Buffer): void;
  write(offset: number, data: Buffer): void;
  /** Every write acknowledged before the call is durable when it resolves. */
  flush(): Promise<void>;
  trim(offset: number, length: number): void;
  /** Makes the range read as zeros; `noHole` asks for it to stay allocated. */
  writeZeroes(offset: number, length: number, noHole: boolean): void;
  /** Allocation of the range, as consecutive extents covering it. */
  blockStatus(offset: number, length: number): NbdExtent[];
  /** Ends this client's use (releases the writer slot). Idempotent. */
  close(): void;
  /** What the session is bound to (engine exports): the agent's view of attachments. */
  readonly target?: SessionTarget;
  /** From now on every call fails with ESHUTDOWN and nothing reaches storage (a forced detach). */
  stop?(): void;
  /** Makes every write this session had acknowledged durable (also once stopped). */
  drain?(): Promise<void>;
}

export interface NbdExportInfo {
  name: string;
  description: string;
}

/** The exports a server offers: listed for NBD_OPT_LIST, opened per connection. */
export interface NbdExports {
  list(): NbdExportInfo[];
  /**
   * Describes an export without opening it (NBD_OPT_INFO), or null if it does not exist.
   * `readOnly` tells what a client connecting now would get.
   */
  describe(name: string): { size: number; readOnly: boolean; blockSize: number; description: string } | null;
  /** Opens an export for one connection, or null if it does not exist. */
  open(name: string): NbdBackend | null;
}
