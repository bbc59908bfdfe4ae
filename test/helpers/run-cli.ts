/** Runs bin/snapsync-agent to its end, with no agent to reach (SNAPSYNC_URL points nowhere) unless one is given. */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const BIN = path.resolve(__dirname, '../../bin/snapsync-agent');

export function runCli(
  args: string[],
  agent: { url: string; token: string } | null = null,
): {
  status: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
} {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    // Or the agent given (test/helpers/agent-process.ts).
    env: agent
      ? { ...process.env, SNAPSYNC_URL: agent.url, SNAPSYNC_TOKEN: agent.token }
      : { ...process.env, SNAPSYNC_URL: 'ws://127.0.0.1:1' },
  });
  return { status: r.status, signal: r.signal, out: r.stdout, err: r.stderr };
}
