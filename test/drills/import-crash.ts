/**
 * Import crash drill: `import --create` of a multi-chunk image, SIGKILL at a
 * random point of it, restart on the same pool. After each kill: no partial
 * container (either none, or — the kill came after the last commit — the
 * whole image), fsck clean, and the retry with the same idempotency key
 * succeeds with the whole image (a replay if the first one had finished).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AgentClient } from '../../agent/client/client';
import type { OpMap } from '../../schema';
import { type AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { seededRandom } from '../helpers/seeded-random';
import { tempDir } from '../helpers/tmp';

export interface ImportCrashResult {
  cycles: number;
  /** Kills that landed before the import's last commit (no container after the restart). */
  killedMidway: number;
  /** Kills that came after it (the whole image there, the retry a replay). */
  killedAfter: number;
  partialContainers: number;
  fsckProblems: number;
  retryFailures: number;
  wrong: string[];
}

const MiB = 1024 * 1024;
const CHUNKS = 8; // the agent copies 4 MiB at a time and yields between chunks

/** Reads one probe per chunk: true when every chunk holds its own byte. */
async function whole(client: AgentClient, name: string): Promise<boolean> {
  for (let chunk = 0; chunk < CHUNKS; chunk++) {
    const got = await client.read(name, chunk * 4 * MiB + 4 * MiB - 4096, 4096);
    if (!got.equals(Buffer.alloc(4096, chunk + 1))) return false;
  }
  return true;
}

/** An agent allowed to import from `dir`: on a fresh pool, or on `previous`'s pool with its token. */
export function startDrillAgent(dir: string, previous?: AgentProcess): Promise<AgentProcess> {
  return startAgentProcess({
    ...(previous ? { poolDir: previous.poolDir, token: previous.token } : {}),
    args: ['--allow-dir', dir],
  });
}

/**
 * Runs `import` under `key` and SIGKILLs the agent once `killAfter` bytes are
 * copied (or once answered, if that comes first); returns the agent restarted
 * on the same pool.
 */
export async function importKilled(
  agent: AgentProcess,
  dir: string,
  params: OpMap['import']['params'],
  key: string,
  killAfter: number,
): Promise<AgentProcess> {
  const client = await AgentClient.connect(agent.url, { token: agent.token });
  let kill: Promise<void> | null = null;
  await client
    .call('import', params, {
      idempotencyKey: key,
      onProgress: (done) => {
        if (kill === null && done >= Math.max(killAfter, 1)) kill = agent.kill();
      },
    })
    .catch(() => {});
  if (kill === null) kill = agent.kill(); // answered before the chosen point: kill it now
  await kill;
  await client.close().catch(() => {});
  return startDrillAgent(dir, agent);
}

export async function importCrashDrill(cycles: number, seed: number): Promise<ImportCrashResult> {
  const result: ImportCrashResult = {
    cycles: 0,
    killedMidway: 0,
    killedAfter: 0,
    partialContainers: 0,
    fsckProblems: 0,
    retryFailures: 0,
    wrong: [],
  };
  const next = seededRandom(seed);
  const images = tempDir('snapsync-import-crash-');
  const image = path.join(images, 'image.raw');
  const fd = fs.openSync(image, 'w');
  for (let chunk = 0; chunk < CHUNKS; chunk++) fs.writeSync(fd, Buffer.alloc(4 * MiB, chunk + 1));
  fs.closeSync(fd);
  let agent: AgentProcess = await startDrillAgent(images);
  try {
    for (let cycle = 0; cycle < cycles; cycle++) {
      const name = `img-${cycle}`;
      const key = `urn:drill:import:${seed}:${cycle}`;
      const params = { path: image, container: name, create: true };
      // Kill after a random number of chunks (0: at the first progress event).
      agent = await importKilled(agent, images, params, key, Math.floor(next() * CHUNKS) * 4 * MiB);
      const client = await AgentClient.connect(agent.url, { token: agent.token });
      try {
        result.cycles++;
        const there = (await client.call('listContainers', {})).some(
          (c: { name: string }) => c.name === name,
        );
        if (there) {
          if (await whole(client, name)) result.killedAfter++;
          else {
            result.partialContainers++;
            result.wrong.push(`cycle ${cycle}: a partial ${name} survived the kill`);
          }
        } else result.killedMidway++;
        const fsck = await client.call('fsck', {});
        if (!fsck.ok) {
          result.fsckProblems += fsck.problems.length;
          result.wrong.push(`cycle ${cycle}: fsck ${JSON.stringify(fsck.problems.slice(0, 3))}`);
        }
        try {
          const r = await client.call('import', params, { idempotencyKey: key });
          if (r.bytes !== CHUNKS * 4 * MiB || !(await whole(client, name)))
            throw new Error('not the whole image');
          // Keep the pool small: each cycle's image goes once checked.
          await client.call('deleteContainer', { container: name });
        } catch (err) {
          result.retryFailures++;
          result.wrong.push(`cycle ${cycle}: retry with the same key: ${String(err)}`);
        }
      } finally {
        await client.close();
      }
    }
  } finally {
    await agent.stop();
  }
  return result;
}
