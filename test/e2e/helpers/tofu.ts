/**
 * Runs the real `tofu` (SNAPSYNC_TOFU) or `terraform` (SNAPSYNC_TERRAFORM) in
 * a work directory whose TF_CLI_CONFIG_FILE points `snapsync/snapsync` at
 * this checkout's bin/ with dev_overrides (no registry, no init), as the
 * README's setup does. Both CLIs take the same commands and print the same
 * plan and apply lines, so one test file runs against each.
 */
import * as assert from 'node:assert/strict';
import { type SpawnSyncReturns, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const BIN_DIR = path.resolve(__dirname, '../../../bin');

/** The provider block a test configuration starts with: the agent's URL from var.url (TF_VAR_url). */
export const PROVIDER_HCL = `
terraform {
  required_providers {
    snapsync = { source = "snapsync/snapsync" }
  }
}

variable "url" { type = string }

# The token comes from SNAPSYNC_TOKEN: a variable's value would be written into plan files.
provider "snapsync" {
  url = var.url
}
`;

export interface HclCli {
  name: 'tofu' | 'terraform';
  /** The binary, from the environment (undefined: the suite fails in `before`, saying how to get one). */
  bin: string | undefined;
}

/**
 * The CLIs an e2e file runs against: OpenTofu always (SNAPSYNC_TOFU, built by
 * scripts/build-tofu-cli.sh), Terraform v1.5.7 too when SNAPSYNC_TERRAFORM names
 * one (scripts/build-terraform-cli.sh; `make e2e` builds and passes both).
 */
export function hclClis(): HclCli[] {
  const clis: HclCli[] = [{ name: 'tofu', bin: process.env.SNAPSYNC_TOFU }];
  if (process.env.SNAPSYNC_TERRAFORM) clis.push({ name: 'terraform', bin: process.env.SNAPSYNC_TERRAFORM });
  return clis;
}

/** The binary of `cli`, or a failure that says how to get one. */
export function cliBinary(cli: HclCli): string {
  const variable = cli.name === 'tofu' ? 'SNAPSYNC_TOFU' : 'SNAPSYNC_TERRAFORM';
  assert.ok(cli.bin, `no ${cli.name}: run \`make e2e\` (it builds one) or set ${variable}`);
  return cli.bin;
}

/** Writes `work/tofu.rc` with the dev_overrides block. */
export function writeTofuRc(work: string): void {
  fs.writeFileSync(
    path.join(work, 'tofu.rc'),
    `provider_installation {\n  dev_overrides {\n    "snapsync/snapsync" = "${BIN_DIR}"\n  }\n  direct {}\n}\n`,
  );
}

export interface TofuRunner {
  /** One tofu command: options go between the (sub)command and its arguments; `state` subcommands take none. */
  tofu(...args: string[]): SpawnSyncReturns<string>;
  /** The same, asserting exit 0; its stdout. */
  ok(...args: string[]): string;
  /** Runs a command and sends it SIGINT (Ctrl-C) a second after its stdout matches `when`. */
  interrupt(args: string[], when: RegExp): Promise<Interrupted>;
}

export interface Interrupted {
  status: number | null;
  stdout: string;
  stderr: string;
  /** Whether `when` was seen and SIGINT sent. */
  interrupted: boolean;
}

/**
 * A runner in `work` with `env` (the agent's URL/token, TF_VAR_…, TF_LOG…) on
 * top of the test's; every stdout and stderr is appended to `transcript`. A
 * leading `-chdir=DIR` (a global option) runs another configuration.
 */
export function tofuRunner(
  bin: () => string,
  work: () => string,
  env: () => Record<string, string>,
  transcript: string[],
): TofuRunner {
  const argv = (given: string[]): string[] => {
    const args = [...given];
    const chdir = args[0]?.startsWith('-chdir=') ? [args.shift()!] : [];
    const state = args[0] === 'state';
    const [command, rest] = state ? [args.slice(0, 2), args.slice(2)] : [args.slice(0, 1), args.slice(1)];
    const options = state ? [] : command[0] === 'output' ? ['-no-color'] : ['-no-color', '-input=false'];
    return [...chdir, ...command, ...options, ...rest];
  };
  const spawnOptions = () => ({
    cwd: work(),
    env: {
      ...process.env,
      // The plugin's `#!/usr/bin/env node` must find the project's Node.
      PATH: `${path.dirname(process.execPath)}:${process.env.PATH}`,
      TF_CLI_CONFIG_FILE: path.join(work(), 'tofu.rc'),
      // The plugin's socket directory, removed with the work directory even when the CLI kills the plugin outright.
      PLUGIN_UNIX_SOCKET_DIR: work(),
      TF_IN_AUTOMATION: '1',
      CHECKPOINT_DISABLE: '1',
      ...env(),
    },
  });
  const tofu = (...given: string[]): SpawnSyncReturns<string> => {
    const r = spawnSync(bin(), argv(given), { ...spawnOptions(), encoding: 'utf8' });
    transcript.push(r.stdout, r.stderr);
    return r;
  };
  const interrupt = (given: string[], when: RegExp) =>
    new Promise<Interrupted>((resolve) => {
      const child = spawn(bin(), argv(given), { ...spawnOptions(), stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      let sent = false;
      child.stdout.on('data', (d) => {
        stdout += d;
        if (!sent && when.test(stdout)) {
          sent = true;
          // A moment for the provider to be inside the call, then Ctrl-C (the host's SIGINT).
          setTimeout(() => child.kill('SIGINT'), 1_000);
        }
      });
      child.stderr.on('data', (d) => {
        stderr += d;
      });
      child.on('close', (status) => {
        transcript.push(stdout, stderr);
        resolve({ status, stdout, stderr, interrupted: sent });
      });
    });
  const ok = (...args: string[]) => {
    const r = tofu(...args);
    assert.equal(r.status, 0, `tofu ${args.join(' ')}:\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  };
  return { tofu, ok, interrupt };
}
