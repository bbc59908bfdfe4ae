/**
 * The snapsync side of bench:nbd, through the public surface only: a pool made
 * by `snapsync-agent init`, served by `snapsync-agent serve` as its own process
 * (NBD on a Unix socket), driven over the WebSocket protocol with the agent
 * client (import, snapshot, clone, delete, sync, info) — what users run,
 * whatever the engine does inside.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AgentClient, AgentError } from '../../agent/client/client';
import type { OpMap, OpName } from '../../schema';
import { exec, type Server, sleep, startServer, waitForSocket } from './procs';

export const AGENT_BIN = path.resolve(__dirname, '../../bin/snapsync-agent');

export interface BenchAgent {
  url: string;
  socket: string;
  poolDir: string;
  call<K extends OpName>(op: K, params: OpMap[K]['params']): Promise<OpMap[K]['result']>;
  uri(exportName: string): string;
  /** Every file of the pool (data and metadata), for page-cache control. */
  files(): Promise<string[]>;
  /** Resolves once the pool uses `blocks` blocks again (a deleted disk's blocks are freed in the background). */
  settle(blocks: number): Promise<boolean>;
  stop(): Promise<void>;
}

/** `init` a pool in `dir` and `serve` it; `allowDir` is where images may be imported from; `dataFiles` null: init's default. */
export async function startAgent(
  dir: string,
  capacityMiB: number,
  allowDir: string,
  dataFiles: number | null,
): Promise<BenchAgent> {
  const poolDir = path.join(dir, 'pool');
  const socket = path.join(dir, 'nbd.sock');
  const striping = dataFiles === null ? [] : ['--data-files', String(dataFiles)];
  await exec(process.execPath, [
    AGENT_BIN,
    'init',
    '--pool',
    poolDir,
    '--capacity',
    `${capacityMiB}M`,
    ...striping,
  ]);
  const args = [
    AGENT_BIN,
    'serve',
    '--pool',
    poolDir,
    '--listen',
    '127.0.0.1:0',
    '--insecure-no-auth',
    '--allow-dir',
    allowDir,
    '--nbd',
    `unix:${socket}`,
  ];
  const server: Server = startServer(process.execPath, args, path.join(dir, 'agent.log'));
  const listening = await new Promise<{ listening: string }>((resolve, reject) => {
    let out = '';
    server.child.stdout!.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve(JSON.parse(line));
    });
    server.exited.then((code) => reject(new Error(`agent exited (${code}); see ${dir}/agent.log`)));
  });
  await waitForSocket(socket, 'snapsync-agent serve --nbd');
  const client = await AgentClient.connect(listening.listening, { clientName: 'bench-nbd' });
  const call = <K extends OpName>(op: K, params: OpMap[K]['params']) => client.call(op, params);
  return {
    url: listening.listening,
    socket,
    poolDir,
    call,
    uri: (name) => `nbd+unix:///${name}?socket=${socket}`,
    files: async () => {
      const info = await call('info', {});
      const inPool = fs
        .readdirSync(poolDir, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => path.join(e.parentPath, e.name));
      return [...new Set([info.dataPath, ...inPool])];
    },
    settle: async (blocks) => {
      for (let i = 0; i < 600; i++) {
        if ((await call('info', {})).usedBlocks <= blocks) return true;
        await sleep(50);
      }
      return false;
    },
    stop: async () => {
      await client.close();
      await server.stop();
    },
  };
}

/** Runs `op`, retrying while an NBD client that just disconnected still shows as attached (IN_USE). */
export async function whenDetached<T>(op: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await op();
    } catch (err) {
      if (!(err instanceof AgentError && err.code === 'IN_USE') || attempt >= 100) throw err;
      await sleep(20);
    }
  }
}
