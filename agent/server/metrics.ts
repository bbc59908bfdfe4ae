/** Prometheus metrics: operations, latencies, errors by code, pool space, connections, NBD threads. */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Pool } from '../engine';
import type { NbdServer } from '../nbd';
import type { SessionRegistry } from '../nbd/sessions';
import type { HeldBytesTotal } from './held-bytes-total';

export class AgentMetrics {
  readonly registry = new Registry();
  readonly operations = new Counter({
    name: 'snapsync_operations_total',
    help: 'Operations handled, by op and result code (OK on success)',
    labelNames: ['op', 'code'],
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'snapsync_operation_seconds',
    help: 'Operation latency',
    labelNames: ['op'],
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [this.registry],
  });
  readonly connections = new Gauge({
    name: 'snapsync_connections',
    help: 'Open WebSocket connections',
    registers: [this.registry],
  });
  readonly authFailures = new Counter({
    name: 'snapsync_auth_failures_total',
    help: 'Refused WebSocket upgrades and /metrics requests, by reason',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly nbdRefusals = new Counter({
    name: 'snapsync_nbd_refusals_total',
    help: 'NBD connections refused or closed before they were served (limits, handshake timeout, eviction, fence), by reason',
    labelNames: ['reason'],
    registers: [this.registry],
  });

  constructor(pool: Pool, sessions?: SessionRegistry, heldBytes?: HeldBytesTotal) {
    const held = [
      [
        'snapsync_held_bytes',
        'Bytes all WebSocket connections hold for their clients (replies not taken, reads under way, write data not yet written); bounded by --max-held-bytes-total',
        () => heldBytes?.bytes ?? 0,
      ],
      [
        'snapsync_connections_paused',
        'WebSocket connections whose frames the agent is not reading now: at their --max-held-bytes, or holding bytes while all hold --max-held-bytes-total',
        () => heldBytes?.pausedConnections ?? 0,
      ],
    ] as const;
    for (const [name, help, value] of held)
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.set(value());
        },
      });
    new Gauge({
      name: 'snapsync_nbd_sessions',
      help: 'NBD sessions attached, by mode (read-write, read-only) and container',
      labelNames: ['mode', 'container'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const s of sessions?.all() ?? []) this.inc({ mode: s.mode, container: s.target.container });
      },
    });
    new Gauge({
      name: 'snapsync_nbd_fences',
      help: 'Fenced NBD exports (a forced operation disconnected their clients; lifted by unfence), by container',
      labelNames: ['container'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const f of sessions?.fences.all() ?? []) this.set({ container: f.container }, 1);
      },
    });
    new Gauge({
      name: 'snapsync_pool_blocks',
      help: 'Pool blocks by state',
      labelNames: ['state'],
      registers: [this.registry],
      collect() {
        const info = pool.info();
        this.set({ state: 'used' }, info.usedBlocks);
        this.set({ state: 'free' }, info.freeBlocks);
      },
    });
    new Counter({
      name: 'snapsync_data_direct_write_bytes_total',
      help: 'Bytes of large aligned writes (1 MiB or more) written around the page cache (O_DIRECT); stays 0 where the filesystem refuses O_DIRECT',
      registers: [this.registry],
      collect() {
        // The device keeps the running total; a counter cannot be set, so it is rebuilt from it.
        this.reset();
        this.inc(pool.directBytesWritten);
      },
    });
    new Gauge({
      name: 'snapsync_pool_block_size_bytes',
      help: 'Pool block size',
      registers: [this.registry],
      collect() {
        this.set(pool.blockSize);
      },
    });
  }

  /** The NBD server's transmission threads (relay/threads.ts), from when the server starts. */
  watchNbd(nbd: Pick<NbdServer, 'threadStats'>): void {
    const gauges = [
      [
        'snapsync_nbd_threads',
        'NBD transmission threads started (serving a connection or kept ready)',
        'threads',
      ],
      [
        'snapsync_nbd_thread_connections',
        'NBD connections a transmission thread serves now (the others are on the event loop)',
        'connections',
      ],
    ] as const;
    for (const [name, help, stat] of gauges)
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.set(nbd.threadStats()[stat]);
        },
      });
    new Counter({
      name: 'snapsync_nbd_thread_reads_total',
      help: 'NBD reads a transmission thread answered itself from the data file (not through the event loop)',
      registers: [this.registry],
      collect() {
        // The server keeps the running total; a counter cannot be set, so it is rebuilt from it.
        this.reset();
        this.inc(nbd.threadStats().reads);
      },
    });
  }
}
