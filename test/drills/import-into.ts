/**
 * Import drills for an EXISTING vdisk (`import` without `--create`), which
 * must leave the vdisk exactly as it was or holding exactly the new image:
 *
 * - kills: a vdisk filled by `import --create` of an old image, then the new
 *   image imported into it with an idempotency key, SIGKILL after a random
 *   number of chunks, restart on the same pool;
 * - faults: the agent's import code (transfer.ts) on an in-process pool whose
 *   device fails (EIO on a random write, or on a sync) mid-import;
 * - disconnects: the client goes away mid-import (the agent finishes it).
 *
 * After each: every chunk reads as the old image or every chunk as the new
 * one (never a mix), the same uuid, generation and size, fsck clean, and the
 * retry with the same key ends with the new image.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AgentClient } from '../../agent/client/client';
import { isSnapsyncError, Pool } from '../../agent/engine';
import { AllowedDirs } from '../../agent/server/paths';
import { importImage } from '../../agent/server/transfer';
import type { AgentProcess } from '../helpers/agent-process';
import { seededRandom } from '../helpers/seeded-random';
import { tempDir } from '../helpers/tmp';
import { importKilled, startDrillAgent } from './import-crash';

export interface ImportIntoResult {
  /** Imports interrupted (a kill, an injected fault, a dropped client). */
  cycles: number;
  /** Afterwards the vdisk held exactly the old image (the import undone). */
  old: number;
  /** Afterwards it held exactly the new image (the import had completed). */
  new: number;
  /** Neither: part of each, or something else. Must stay 0. */
  mixed: number;
  /** uuid, generation or size not as before the import. Must stay 0. */
  identityChanged: number;
  fsckProblems: number;
  retryFailures: number;
  wrong: string[];
}

const MiB = 1024 * 1024;
const CHUNK = 4 * MiB; // the agent copies 4 MiB at a time and yields between chunks
const CHUNKS = 8;

/** The old and new images: different bytes in every chunk; a zero chunk in each (holes over data, data over holes). */
function images(dir: string) {
  const chunk = (kind: 'old' | 'new', i: number) =>
    Buffer.alloc(CHUNK, kind === 'old' ? (i === 2 ? 0 : 0xa0 + i) : i === 5 ? 0 : i + 1);
  const write = (kind: 'old' | 'new') => {
    const file = path.join(dir, `${kind}.raw`);
    const fd = fs.openSync(file, 'w');
    for (let i = 0; i < CHUNKS; i++) fs.writeSync(fd, chunk(kind, i));
    fs.closeSync(fd);
    return file;
  };
  const digests = (kind: 'old' | 'new') =>
    Array.from({ length: CHUNKS }, (_, i) => createHash('sha256').update(chunk(kind, i)).digest('hex'));
  return { oldImage: write('old'), newImage: write('new'), old: digests('old'), new: digests('new') };
}

type Reader = (offset: number, length: number) => Promise<Buffer> | Buffer;

/** 'old' or 'new' when every chunk is that image's, else 'mixed'. */
async function contentOf(read: Reader, expect: ReturnType<typeof images>): Promise<'old' | 'new' | 'mixed'> {
  const seen = new Set<string>();
  for (let i = 0; i < CHUNKS; i++) {
    const digest = createHash('sha256')
      .update(await read(i * CHUNK, CHUNK))
      .digest('hex');
    seen.add(digest === expect.old[i] ? 'old' : digest === expect.new[i] ? 'new' : 'mixed');
  }
  return seen.size === 1 && !seen.has('mixed') ? ([...seen][0] as 'old' | 'new') : 'mixed';
}

const identity = (c: { uuid: string; generation: number; size: number }) =>
  JSON.stringify([c.uuid, c.generation, c.size]);

function emptyResult(): ImportIntoResult {
  return {
    cycles: 0,
    old: 0,
    new: 0,
    mixed: 0,
    identityChanged: 0,
    fsckProblems: 0,
    retryFailures: 0,
    wrong: [],
  };
}

/** After an interrupted import: content, identity, fsck, then the retry with the same key. */
async function verify(
  result: ImportIntoResult,
  label: string,
  expect: ReturnType<typeof images>,
  api: {
    read: Reader;
    describe: () => Promise<{ uuid: string; generation: number; size: number }>;
    fsck: () => Promise<{ ok: boolean; problems: unknown[] }>;
    retry: () => Promise<{ bytes: number }>;
  },
  before: string,
): Promise<void> {
  result.cycles++;
  const content = await contentOf(api.read, expect);
  result[content]++;
  if (content === 'mixed') result.wrong.push(`${label}: the vdisk holds a mix of the old and the new image`);
  if (identity(await api.describe()) !== before) {
    result.identityChanged++;
    result.wrong.push(`${label}: uuid, generation or size changed`);
  }
  const fsck = await api.fsck();
  if (!fsck.ok) {
    result.fsckProblems += fsck.problems.length;
    result.wrong.push(`${label}: fsck ${JSON.stringify(fsck.problems.slice(0, 3))}`);
  }
  try {
    const r = await api.retry();
    if (r.bytes !== CHUNKS * CHUNK || (await contentOf(api.read, expect)) !== 'new')
      throw new Error('not the whole new image');
  } catch (err) {
    result.retryFailures++;
    result.wrong.push(`${label}: retry with the same key: ${String(err)}`);
  }
}

/**
 * Imports into existing vdisks on a real agent, each interrupted by
 * `interrupt` after a random number of chunks (it returns the agent to go on
 * with), then verified and retried with the same key.
 */
async function onAgent(
  what: string,
  cycles: number,
  seed: number,
  interrupt: (
    agent: AgentProcess,
    dir: string,
    params: { path: string; container: string },
    key: string,
    at: number,
  ) => Promise<AgentProcess>,
): Promise<ImportIntoResult> {
  const result = emptyResult();
  const next = seededRandom(seed);
  const dir = tempDir(`snapsync-import-into-${what}-`);
  const expect = images(dir);
  let agent: AgentProcess = await startDrillAgent(dir);
  try {
    for (let cycle = 0; cycle < cycles; cycle++) {
      const name = `dst-${cycle}`;
      const key = `urn:drill:import-into-${what}:${seed}:${cycle}`;
      const params = { path: expect.newImage, container: name };
      let client = await AgentClient.connect(agent.url, { token: agent.token });
      await client.call('import', { path: expect.oldImage, container: name, create: true });
      const before = identity(await client.call('describe', { container: name }));
      await client.close();
      // After a random number of chunks (0: at the first progress event; CHUNKS: after the last chunk, before
      // the last commit), or once answered (past the end).
      agent = await interrupt(agent, dir, params, key, Math.floor(next() * (CHUNKS + 2)) * CHUNK);
      client = await AgentClient.connect(agent.url, { token: agent.token });
      try {
        await verify(
          result,
          `${what} ${cycle}`,
          expect,
          {
            read: (offset, length) => client.read(name, offset, length),
            describe: () => client.call('describe', { container: name }),
            fsck: () => client.call('fsck', {}),
            retry: () => client.call('import', params, { idempotencyKey: key }),
          },
          before,
        );
        await client.call('deleteContainer', { container: name });
      } finally {
        await client.close();
      }
    }
  } finally {
    await agent.stop();
  }
  return result;
}

/** SIGKILL during imports into an existing vdisk, restart, retry with the same key. */
export function importIntoKillDrill(cycles: number, seed: number): Promise<ImportIntoResult> {
  return onAgent('kill', cycles, seed, importKilled);
}

/**
 * The client goes away mid-import: the agent finishes the import (whole),
 * and a retry with the same key, queued behind it, gets its answer.
 */
export function importIntoDisconnectDrill(cycles: number, seed: number): Promise<ImportIntoResult> {
  return onAgent('disconnect', cycles, seed, async (agent, _dir, params, key, at) => {
    const leaving = await AgentClient.connect(agent.url, { token: agent.token });
    let dropped: Promise<void> | null = null;
    await leaving
      .call('import', params, {
        idempotencyKey: key,
        onProgress: (done) => {
          if (dropped === null && done >= Math.max(at, 1)) dropped = leaving.close();
        },
      })
      .catch(() => {});
    await (dropped ?? leaving.close());
    // Wait for the import the agent goes on with: the same key queues behind it (the container lock).
    const waiting = await AgentClient.connect(agent.url, { token: agent.token });
    await waiting.call('import', params, { idempotencyKey: key }).finally(() => waiting.close());
    return agent;
  });
}

/**
 * Device faults during imports into an existing vdisk: the agent's import
 * code on an in-process pool, EIO on a random data write or on a sync.
 */
export async function importIntoFaultDrill(rounds: number, seed: number): Promise<ImportIntoResult> {
  const result = emptyResult();
  const next = seededRandom(seed);
  const dir = tempDir('snapsync-import-into-faults-');
  const expect = images(dir);
  const dirs = new AllowedDirs([dir]);
  const pool = Pool.create(path.join(dir, 'pool'), { capacityBytes: 256 * MiB });
  const run = (container: string, file: string, create: boolean, key?: string) =>
    importImage(
      pool,
      dirs,
      file,
      container,
      create,
      () => {},
      {
        ...(key ? { idempotency: { key, fingerprint: 'drill', expiresAt: Date.now() + 3600_000 } } : {}),
      },
      () => false,
    );
  try {
    for (let round = 0; round < rounds; round++) {
      const name = `dst-${round}`;
      const key = `drill:import-into-fault:${seed}:${round}`;
      await run(name, expect.oldImage, true);
      const before = identity(pool.describe(name));
      // A random data write of the import fails, or its data sync (the flush before its last commit).
      const onSync = next() < 0.25;
      const failAt = onSync ? 1 : 1 + Math.floor(next() * CHUNKS * 40);
      let count = 0;
      pool.device.setFaultInjector((op) => {
        if (op === (onSync ? 'sync' : 'write') && ++count === failAt)
          throw Object.assign(new Error('injected EIO'), { code: 'EIO' });
      });
      const outcome = await run(name, expect.newImage, false, key).then(
        () => 'ok',
        (err) => (isSnapsyncError(err, 'IO_ERROR') ? 'IO_ERROR' : String(err)),
      );
      pool.device.setFaultInjector(null);
      if (outcome !== 'IO_ERROR' && outcome !== 'ok')
        result.wrong.push(`fault ${round}: the import ended with ${outcome}`);
      await verify(
        result,
        `fault ${round}`,
        expect,
        {
          read: (offset, length) => pool.read(name, offset, length),
          describe: async () => pool.describe(name),
          fsck: async () => {
            pool.reclaim();
            return pool.fsck();
          },
          retry: async () => {
            const earlier = pool.idempotent(key);
            return earlier ? (earlier.result as { bytes: number }) : run(name, expect.newImage, false, key);
          },
        },
        before,
      );
      pool.deleteContainer(name);
    }
  } finally {
    await pool.close();
  }
  return result;
}
