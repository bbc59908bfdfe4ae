/**
 * The agent: the pool, the per-container locks, idempotency TTL, limits,
 * logging and metrics shared by every connection.
 */

import type { Pool, SyncHooks } from '../engine';
import { SessionRegistry } from '../nbd/sessions';
import { Attachments } from './attachments';
import { HeldBytesTotal } from './held-bytes-total';
import { ContainerLocks } from './locks';
import type { Logger } from './logger';
import { AgentMetrics } from './metrics';
import type { AllowedDirs } from './paths';

export interface AgentOptions {
  maxInFlight: number;
  /** Bytes one connection may hold for its client before it reads no more of its frames (connection-bytes.ts). */
  maxHeldBytes: number;
  /** Bytes all connections may hold together before those that hold any read no more (held-bytes-total.ts). */
  maxHeldBytesTotal: number;
  idempotencyTtlMs: number;
}

export type IdentityHooksFactory = (
  preserve: 'default' | 'none' | string[],
  /** How references to the source are treated (agent/identity/references.ts). */
  references?: { referenceMap?: Record<string, string>; allowSourceReferences?: string[] },
) => SyncHooks<unknown, unknown> | null;

export class Agent {
  readonly locks = new ContainerLocks();
  readonly metrics: AgentMetrics;
  /** NBD sessions (shared with the NBD server) and the IN_USE / force rules over them. */
  readonly attachments: Attachments;
  /** What all API connections hold for their clients, bounded together (--max-held-bytes-total). */
  readonly heldBytes: HeldBytesTotal;
  readonly version = '0.1.0';
  readonly started = Date.now();
  stopping = false;
  connections = 0;
  private running = 0;
  private idle: Array<() => void> = [];

  constructor(
    readonly pool: Pool,
    readonly logger: Logger,
    readonly dirs: AllowedDirs,
    readonly options: AgentOptions,
    readonly identityHooks: IdentityHooksFactory,
    sessions: SessionRegistry = new SessionRegistry(),
  ) {
    this.attachments = new Attachments(pool, sessions);
    this.heldBytes = new HeldBytesTotal(options.maxHeldBytesTotal);
    this.metrics = new AgentMetrics(pool, sessions, this.heldBytes);
  }

  /**
   * Runs an operation holding its containers' locks (a VM's include its
   * members, so a VM sync waits for writes to its disks); counts it for a
   * graceful stop.
   */
  async run<T>(keys: string[], fn: () => Promise<T>): Promise<T> {
    this.running++;
    try {
      const expanded = keys.flatMap((name) => {
        try {
          return [name, ...Object.values(this.pool.describe(name).members)];
        } catch {
          return [name]; // not there (yet): the operation reports it
        }
      });
      return await this.locks.run(expanded, fn);
    } finally {
      this.running--;
      if (this.running === 0) for (const resolve of this.idle.splice(0)) resolve();
    }
  }

  /** Resolves when nothing runs any more. */
  drained(): Promise<void> {
    return this.running === 0 ? Promise.resolve() : new Promise((resolve) => this.idle.push(resolve));
  }

  observe(op: string, code: string, seconds: number, fields: Record<string, unknown>): void {
    this.metrics.operations.inc({ op, code });
    this.metrics.latency.observe({ op }, seconds);
    this.logger.info('request', { op, code, ...fields });
  }

  stats() {
    return {
      connections: this.connections,
      inFlight: this.running,
      uptimeSeconds: (Date.now() - this.started) / 1000,
    };
  }
}
