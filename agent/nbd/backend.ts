/**
 * What the NBD server needs from storage. Writes, trims and zeroes return
 * promises (their disk I/O runs on the threadpool, several at once) and
 * report failures by rejecting; a read is done at once when the page cache
 * has it (returns undefined, or throws) and otherwise returns a promise;
 * block status is synchronous (memory only).
 */

import type { BlockLocation } from '../engine/block-io';
import type { MappingListener } from '../engine/mapping-events';
import type { SessionTarget } from './sessions';

/**
 * What a transmission thread (relay/) needs to answer reads itself, from the
 * data file, while the engine tells it where each block is and when what it
 * was told may no longer hold (engine/mapping-events.ts).
 */
export interface DirectReads {
  /** The data files, in layout order: physical block p (≥ 1) is in file (p − 1) mod n at ⌊(p − 1) / n⌋ × blockSize (engine/store/data-layout.ts). */
  readonly paths: string[];
  readonly blockSize: number;
  /** Sessions with the same key read the same blocks: they may share what they were told. */
  readonly key: string;
  /** Where export blocks [first, first + count) are read from now; null: not now (read through the backend). */
  locate(first: number, count: number): BlockLocation | null;
  /** Tells `listener` of changes to what `locate` said; returns the call that stops it. */
  listen(listener: MappingListener): () => void;
  /** Runs `stopped` once the session is stopped or closed (no more reads of its own); returns the call that cancels it. */
  onStop(stopped: () => void): () => void;
}

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
  /**
   * NBD_FLAG_CAN_MULTI_CONN: the client may open more connections to this
   * export and write through them, and a FLUSH on any of them covers every
   * write acknowledged on all of them.
   */
  readonly multiConn: boolean;
  /** Preferred I/O size (power of two, at least 512): requests this aligned avoid read-modify-write. */
  readonly blockSize: number;
  /**
   * Fills `target` (exactly `target.length` bytes) from `offset`: at once
   * (undefined; a page-cache hit, or a throw) or when the promise resolves.
   */
  read(offset: number, target: Buffer): Promise<void> | undefined;
  /** Resolves once the data is written (acknowledged: the next flush on any connection covers it). */
  write(offset: number, data: Buffer): Promise<void>;
  /**
   * `write` done at once if it can be (true: written, as acknowledged as a
   * resolved `write`), else nothing done (false: call `write`). `data` is
   * only valid during the call. A backend without it always uses `write`.
   */
  writeNow?(offset: number, data: Buffer): boolean;
  /** Every write acknowledged before the call is durable when it resolves. */
  flush(): Promise<void>;
  trim(offset: number, length: number): Promise<void>;
  /** Makes the range read as zeros; `noHole` asks for it to stay allocated. */
  writeZeroes(offset: number, length: number, noHole: boolean): Promise<void>;
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
  /** Present when reads may be served from the data file directly (engine exports). */
  readonly directReads?: DirectReads;
}

/** Who a connection is: an authenticated TLS identity (`cn:NAME`, `psk:NAME`), or null. */
export type NbdClientId = string | null;

export interface NbdExportDescription {
  size: number;
  readOnly: boolean;
  multiConn: boolean;
  blockSize: number;
  description: string;
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
   * `readOnly` and `multiConn` tell what client `client` connecting now would get.
   */
  describe(name: string, client?: NbdClientId): NbdExportDescription | null;
  /** Opens an export for one connection of `client`, or null if it does not exist. */
  open(name: string, client?: NbdClientId): NbdBackend | null;
}
