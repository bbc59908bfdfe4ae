/** Runs bin/snapsync-agent to its end, with no agent to reach (SNAPSYNC_URL points nowhere) unless one is given. */
import { execFile, spawnSync } from 'node:child_process';
import * as path from 'node:path';

const BIN = path.resolve(__dirname, '../../bin/snapsync-agent');

export interface CliResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
}

/** The environment that points the CLI at `agent` (test/helpers/agent-process.ts), or nowhere. */
function cliEnv(agent: { url: string; token: string } | null): NodeJS.ProcessEnv {
  return agent
    ? { ...process.env, SNAPSYNC_URL: agent.url, SNAPSYNC_TOKEN: agent.token }
    : { ...process.env, SNAPSYNC_URL: 'ws://127.0.0.1:1' };
}

export function runCli(args: string[], agent: { url: string; token: string } | null = null): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: cliEnv(agent),
  });
  return { status: r.status, signal: r.signal, out: r.stdout, err: r.stderr };
}

/** The same without blocking this process's event loop (for tests whose own sockets must stay served meanwhile). */
export function runCliAsync(
  args: string[],
  agent: { url: string; token: string } | null = null,
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [BIN, ...args],
      { encoding: 'utf8', timeout: 60_000, env: cliEnv(agent) },
      (_err, out, err) => resolve({ status: child.exitCode, signal: child.signalCode, out, err }),
    );
  });
}
