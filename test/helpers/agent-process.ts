/** Starts the real agent (bin/snapsync-agent serve) as a child process on loopback. */
import * as assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Pool } from '../../agent/engine';
import { tempDir } from './tmp';

const BIN = path.resolve(__dirname, '../../bin/snapsync-agent');

/** Every agent started and not yet exited. */
const running = new Set<ChildProcess>();

/**
 * In the calling `describe`: after each test, kills the agents the test
 * started and left running. A failed assertion skips the test's own stop, and
 * a live agent keeps mocha from ever exiting. Agents started in `before` hooks
 * are the describe's `after`'s to stop; not for a describe whose tests hand an
 * agent on to the next test.
 */
export function killAgentsTestsLeave(): void {
  let before = new Set<ChildProcess>();
  beforeEach(() => {
    before = new Set(running);
  });
  afterEach(async () => {
    const left = [...running].filter((child) => !before.has(child));
    await Promise.all(
      left.map(
        (child) =>
          new Promise((resolve) => {
            child.once('exit', resolve);
            child.kill('SIGKILL');
          }),
      ),
    );
  });
}

export interface AgentProcess {
  url: string;
  port: number;
  /** The NBD address from the startup line, when serve was given --nbd. */
  nbd?: string;
  poolDir: string;
  token: string;
  dir: string;
  logs(): string;
  stop(): Promise<number | null>;
  kill(): Promise<void>;
  /** Pauses (SIGSTOP) or resumes (SIGCONT) the agent itself: a hung agent, as clients see one. */
  pause(paused: boolean): void;
  /** The agent's own process id (not the launcher's), e.g. to read its /proc/PID/status. */
  pid(): number;
}

/** The agent's own pid: the launcher's child when it handed over to the project's Node. */
function agentPid(launcher: number): number {
  try {
    const children = fs.readFileSync(`/proc/${launcher}/task/${launcher}/children`, 'utf8').trim();
    return children ? Number(children.split(/\s+/)[0]) : launcher;
  } catch {
    return launcher;
  }
}

/** The agent's first stdout line (`nbd` with --nbd). */
type Listening = { listening: string; port: number; nbd?: string };

/** Creates a pool (unless given) and serves it; resolves once the agent listens. */
export async function startAgentProcess(
  options: {
    poolDir?: string;
    token?: string;
    args?: string[];
    env?: Record<string, string>;
    /** HOST:PORT (default 127.0.0.1:0, a free port): a restarted agent back on its address. */
    listen?: string;
  } = {},
): Promise<AgentProcess> {
  const dir = tempDir('snapsync-agent-');
  const poolDir = options.poolDir ?? path.join(dir, 'pool');
  if (!options.poolDir) await Pool.create(poolDir, { blockSize: 4096, capacityBytes: 1 << 30 }).close();
  const token = options.token ?? `tok-${Math.random().toString(36).slice(2)}-${Date.now()}`;
  const tokenFile = path.join(dir, 'token');
  fs.writeFileSync(tokenFile, token, { mode: 0o600 });
  const child: ChildProcess = spawn(
    process.execPath,
    [
      BIN,
      'serve',
      '--pool',
      poolDir,
      '--token-file',
      tokenFile,
      '--listen',
      options.listen ?? '127.0.0.1:0',
      '--allow-dir',
      dir,
      ...(options.args ?? []),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } },
  );
  running.add(child);
  child.on('exit', () => running.delete(child));
  let stderr = '';
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  const listening = await new Promise<Listening>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve(JSON.parse(line));
    });
    child.on('exit', (code) => reject(new Error(`agent exited (${code}): ${stderr}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    url: listening.listening,
    port: listening.port,
    ...(listening.nbd ? { nbd: listening.nbd } : {}),
    poolDir,
    token,
    dir,
    logs: () => stderr,
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
    pause: (paused) => process.kill(agentPid(child.pid!), paused ? 'SIGSTOP' : 'SIGCONT'),
    pid: () => agentPid(child.pid!),
  };
}

/** `snapsync-agent <args> --json` against this agent, as an operator runs it; asserts exit 0, returns the JSON. */
export function agentCli(agent: Pick<AgentProcess, 'url' | 'token'>) {
  return (...args: string[]) => {
    const r = spawnSync(process.execPath, [BIN, ...args, '--json'], {
      env: { ...process.env, SNAPSYNC_URL: agent.url, SNAPSYNC_TOKEN: agent.token },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, `snapsync-agent ${args.join(' ')}: ${r.stdout}${r.stderr}`);
    return JSON.parse(r.stdout);
  };
}
