/**
 * Runs a Pulumi example (examples/refresh-staging by default) with the real
 * Pulumi CLI through the Automation API, offline: a local file backend, the
 * passphrase secrets provider, no update check, no plugin downloads.
 *
 * The program runs inline (this Node process is its language host: the
 * nodejs language plugin is not a module the Go proxy serves here), but it is
 * the example's own index.ts, re-evaluated for every operation as `pulumi up`
 * would, and it imports `@snapsync/pulumi` from its built package. The
 * dynamic-provider plugin that the CLI starts is `pulumi-resource-pulumi-nodejs`
 * from `@pulumi/pulumi`, found on PATH like in a real installation.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LocalWorkspace, PulumiCommand, type Stack } from '@pulumi/pulumi/automation';

const REPO = path.resolve(__dirname, '../..');
const REFRESH_STAGING = path.join(REPO, 'examples/refresh-staging');

/** The Pulumi CLI to use: SNAPSYNC_PULUMI (a path), else `pulumi` on PATH, else null. */
export function findPulumiCli(): string | null {
  const named = process.env.SNAPSYNC_PULUMI;
  if (named) return fs.existsSync(named) ? path.resolve(named) : null;
  const found = spawnSync('sh', ['-c', 'command -v pulumi'], { encoding: 'utf8' });
  return found.status === 0 && found.stdout.trim() ? found.stdout.trim() : null;
}

export interface ExampleStackOptions {
  /** Path to the `pulumi` binary. */
  pulumi: string;
  /** Agent URL and token: the token is stored as a secret in the stack's config. */
  agentUrl: string;
  token: string;
  /** Project config values (e.g. `snapshotName`, `diskSize`). */
  config: Record<string, string>;
  /** The example directory (default examples/refresh-staging). */
  example?: string;
  stackName?: string;
}

export interface ExampleStack {
  stack: Stack;
  /** The stack's work directory (Pulumi.yaml, stack config, file backend, PULUMI_HOME). */
  workDir: string;
  /** Runs the `pulumi` CLI itself in the stack's directory and environment; returns its stdout. */
  pulumi(...args: string[]): string;
  /** Deletes the work directory and everything the CLI kept there. */
  dispose(): void;
}

/**
 * Creates a stack of the example in a fresh work directory. The directory is
 * under the repository's .tmp/ so the plugin resolves `@pulumi/pulumi` and
 * `@snapsync/pulumi` from the repository's node_modules, as in a project.
 */
export async function createExampleStack(options: ExampleStackOptions): Promise<ExampleStack> {
  const example = options.example ?? REFRESH_STAGING;
  fs.mkdirSync(path.join(REPO, '.tmp'), { recursive: true });
  const workDir = fs.mkdtempSync(path.join(REPO, '.tmp', `pulumi-${path.basename(example)}-`));
  fs.copyFileSync(path.join(example, 'Pulumi.yaml'), path.join(workDir, 'Pulumi.yaml'));
  fs.mkdirSync(path.join(workDir, 'state'));
  const passphrase = `e2e-${process.pid}-${Date.now()}`;
  const pluginDir = path.dirname(require.resolve('@pulumi/pulumi/package.json'));
  const envVars: Record<string, string> = {
    PULUMI_BACKEND_URL: `file://${path.join(workDir, 'state')}`,
    PULUMI_CONFIG_PASSPHRASE: passphrase,
    PULUMI_HOME: path.join(workDir, 'home'),
    PULUMI_SKIP_UPDATE_CHECK: 'true',
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: 'true',
    // This Node (24) first, for the plugin script's `node`; then the plugin itself.
    PATH: [path.dirname(process.execPath), pluginDir, process.env.PATH ?? ''].join(path.delimiter),
  };
  const entry = path.join(example, 'index.ts');
  const program = async () => {
    // A fresh evaluation each time, as a new `pulumi up` process would do.
    delete require.cache[require.resolve(entry)];
    return require(entry);
  };
  const pulumiCommand = await PulumiCommand.get({ root: path.dirname(path.dirname(options.pulumi)) });
  const stack = await LocalWorkspace.createOrSelectStack(
    { stackName: options.stackName ?? 'dev', projectName: path.basename(example), program },
    { workDir, envVars, pulumiCommand, secretsProvider: 'passphrase' },
  );
  await stack.setConfig('snapsync:url', { value: options.agentUrl });
  await stack.setConfig('snapsync:token', { value: options.token, secret: true });
  for (const [key, value] of Object.entries(options.config)) await stack.setConfig(key, { value });
  return {
    stack,
    workDir,
    pulumi: (...args) => {
      const run = spawnSync(options.pulumi, [...args, '--stack', stack.name, '--non-interactive'], {
        cwd: workDir,
        env: { ...process.env, ...envVars },
        encoding: 'utf8',
      });
      if (run.status !== 0) throw new Error(`pulumi ${args.join(' ')} failed (${run.status}): ${run.stderr}`);
      return run.stdout;
    },
    dispose: () => fs.rmSync(workDir, { recursive: true, force: true }),
  };
}
