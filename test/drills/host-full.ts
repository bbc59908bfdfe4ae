/**
 * Host-full drill: the agent's pool on a small tmpfs of its own (default
 * capacity, so the pool believes it has 1 TiB), filled through the API until
 * the *host* filesystem refuses. Each round: fill a new vdisk (writes answer
 * OUT_OF_SPACE, nothing else), then flush, snapshot, create and fsck must all
 * still work, a delete frees blocks, and writes into them work again. Then
 * SIGTERM with the host full must exit 0, a restart must open the pool and
 * delete, and fsck of the pool must be clean.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AgentClient, AgentError } from '../../agent/client/client';
import { Pool } from '../../agent/engine';
import { startAgentProcess } from '../helpers/agent-process';
import { mountSmallFs } from '../helpers/small-fs';

const MiB = 1 << 20;
const CHUNK = 256 * 1024;

export interface HostFullDrillResult {
  rounds: number;
  /** Writes the full host refused, all with OUT_OF_SPACE. */
  writesRefused: number;
  /** Metadata operations (flush, snapshot, create, fsck, delete) tried with the host full, and those that worked. */
  metadataOps: number;
  metadataOpsOk: number;
  /** MiB written in each round before the host was full, and after a delete freed blocks. */
  filledMiB: number[];
  rewrittenMiB: number[];
  /** Exit codes of the agent on SIGTERM with the host full (before and after a restart). */
  sigtermExits: Array<number | null>;
  fsckClean: boolean;
  /** Size of the metadata reserve file at the end (below its 16 MiB: it was given up to let a commit through). */
  reserveBytesAtEnd: number;
  /** Anything that answered otherwise than it must: what and how. */
  wrong: string[];
}

async function codeOf(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
    return 'ok';
  } catch (err) {
    return err instanceof AgentError ? err.code : String(err);
  }
}

export async function hostFullDrill(rounds: number, fsBytes = 48 * MiB): Promise<HostFullDrillResult> {
  const small = mountSmallFs(fsBytes);
  const poolDir = path.join(small.dir, 'pool');
  const result: HostFullDrillResult = {
    rounds,
    writesRefused: 0,
    metadataOps: 0,
    metadataOpsOk: 0,
    filledMiB: [],
    rewrittenMiB: [],
    sigtermExits: [],
    fsckClean: false,
    reserveBytesAtEnd: -1,
    wrong: [],
  };
  const chunk = Buffer.alloc(CHUNK, 0xa5);
  /** Writes chunks until refused; returns MiB written. The refusal must be OUT_OF_SPACE. */
  const fill = async (client: AgentClient, container: string) => {
    for (let i = 0; ; i++) {
      const code = await codeOf(() => client.write(container, i * CHUNK, chunk));
      if (code === 'ok') continue;
      if (code === 'OUT_OF_SPACE') result.writesRefused++;
      else result.wrong.push(`write ${container}@${i * CHUNK}: ${code}`);
      return (i * CHUNK) / MiB;
    }
  };
  const metadata = async (what: string, fn: () => Promise<unknown>) => {
    result.metadataOps++;
    const code = await codeOf(fn);
    if (code === 'ok') result.metadataOpsOk++;
    else result.wrong.push(`${what} with the host full: ${code}`);
  };
  /** Waits until the background reclaimer has freed what a delete discarded. */
  const reclaimed = async (client: AgentClient, usedBefore: number) => {
    for (let i = 0; i < 1000; i++) {
      if ((await client.call('info', {})).usedBlocks < usedBefore) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    result.wrong.push('the delete freed no blocks');
  };

  try {
    await Pool.create(poolDir).close();
    let agent = await startAgentProcess({ poolDir });
    let client = await AgentClient.connect(agent.url, { token: agent.token });
    for (let round = 0; round < rounds; round++) {
      const disk = `fill-${round}`;
      await client.call('createContainer', { name: disk, type: 'vdisk', size: 1 << 30 });
      result.filledMiB.push(await fill(client, disk));
      await metadata('flush', () => client.call('flush', {}));
      await metadata('snapshot', () => client.call('snapshot', { container: disk, name: 's' }));
      await metadata('create', () =>
        client.call('createContainer', { name: `after-${round}`, type: 'vdisk', size: 1 << 30 }),
      );
      await metadata('fsck', async () => {
        const report = await client.call('fsck', {});
        if (!report.ok) throw new Error(`fsck: ${report.problems.map((p) => p.code).join(', ')}`);
      });
      const used = (await client.call('info', {})).usedBlocks;
      await metadata('delete', () => client.call('deleteContainer', { container: disk, recursive: true }));
      await reclaimed(client, used);
      // Blocks the delete freed take writes again, with no new host space.
      result.rewrittenMiB.push(await fill(client, `after-${round}`));
      await metadata('flush', () => client.call('flush', {}));
      await metadata('delete', () => client.call('deleteContainer', { container: `after-${round}` }));
    }
    // Stop with the host still full and writes staged, restart, and free space after the restart.
    await client.call('createContainer', { name: 'last', type: 'vdisk', size: 1 << 30 });
    await fill(client, 'last');
    await client.close();
    result.sigtermExits.push(await agent.stop());
    agent = await startAgentProcess({ poolDir });
    client = await AgentClient.connect(agent.url, { token: agent.token });
    await metadata('delete after a restart', () => client.call('deleteContainer', { container: 'last' }));
    await client.close();
    result.sigtermExits.push(await agent.stop());
    const pool = Pool.open(poolDir);
    result.fsckClean = (await pool.fsck()).ok;
    await pool.close();
    result.reserveBytesAtEnd = fs.statSync(path.join(poolDir, 'metadata.reserve')).size;
  } finally {
    small.unmount();
  }
  return result;
}
