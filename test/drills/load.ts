/**
 * Load drill: many concurrent clients on loopback doing mixed operations
 * (writes, reads, snapshots, syncs, describes) against a real agent, each at
 * least `minOperations` of them and for at least `seconds` (a count, not a
 * rate: a loaded machine makes the drill slower, never weaker). Every operation must succeed and every client's writes must
 * read back; latencies are measured per operation.
 */
import { AgentClient } from '../../agent/client/client';
import { startAgentProcess } from '../helpers/agent-process';

export interface LoadDrillResult {
  clients: number;
  operations: number;
  errors: number;
  lostWrites: number;
  p50ms: number;
  p99ms: number;
  seconds: number;
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;

export async function loadDrill(
  clients: number,
  seconds: number,
  minOperations = 70,
): Promise<LoadDrillResult> {
  // Every client comes from 127.0.0.1: room for all of them and the admin client.
  const agent = await startAgentProcess({ args: ['--max-connections-per-address', String(clients + 8)] });
  const latencies: number[] = [];
  let errors = 0;
  let lostWrites = 0;
  try {
    const admin = await AgentClient.connect(agent.url, { token: agent.token });
    await admin.call('createContainer', { name: 'golden', type: 'vdisk', size: 1 << 20 });
    await admin.write('golden', 0, Buffer.alloc(1 << 20, 7));
    await admin.call('snapshot', { container: 'golden', name: 'v1' });
    const deadline = Date.now() + seconds * 1000;
    const timed = async <T>(fn: () => Promise<T>): Promise<T> => {
      const t0 = process.hrtime.bigint();
      try {
        return await fn();
      } finally {
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    };
    await Promise.all(
      Array.from({ length: clients }, async (_, i) => {
        const c = await AgentClient.connect(agent.url, { token: agent.token });
        const own = `load-${i}`;
        await c.call('createContainer', { name: own, type: 'vdisk', size: 1 << 20 });
        const written = new Map<number, number>();
        let n = 0;
        while (n < minOperations || Date.now() < deadline) {
          n++;
          try {
            const kind = n % 10;
            if (kind < 5) {
              const slot = (n * 7 + i) % 64;
              await timed(() => c.write(own, slot * 4096, Buffer.alloc(4096, n % 251)));
              written.set(slot, n % 251);
            } else if (kind < 7) await timed(() => c.read(own, ((n * 13) % 64) * 4096, 4096));
            else if (kind === 7)
              await timed(() =>
                c
                  .call('sync', { target: own, source: 'golden@v1', safetySnapshot: false })
                  .then(() => written.clear()),
              );
            else if (kind === 8) await timed(() => c.call('snapshot', { container: own, name: `s${n}` }));
            else await timed(() => c.call('describe', { container: own }));
          } catch {
            errors++;
          }
        }
        await c.call('flush', {});
        for (const [slot, byte] of written) if ((await c.read(own, slot * 4096, 1))[0] !== byte) lostWrites++;
        await c.close();
      }),
    );
    await admin.close();
  } finally {
    await agent.stop();
  }
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    clients,
    operations: latencies.length,
    errors,
    lostWrites,
    p50ms: percentile(sorted, 0.5),
    p99ms: percentile(sorted, 0.99),
    seconds,
  };
}
