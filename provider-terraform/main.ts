/**
 * terraform-provider-snapsync: the process `tofu`/`terraform` launch. Only the
 * handshake line goes to stdout (the host parses it); everything else to stderr.
 */
import * as os from 'node:os';
import { setFrontEnd } from '../provider/runtime/front-end';
import { PluginStartError, servePlugin } from './plugin/serve';
import { providerService } from './provider';

export async function main(): Promise<void> {
  // The host's Ctrl-C reaches the whole process group: the host decides when the plugin stops.
  process.on('SIGINT', () => {});
  // Killed by the host or the terminal: exit as the signal would (128 + its number), through the
  // 'exit' handler that removes the socket directory, which the signal's default action would skip.
  for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => process.exit(128 + os.constants.signals[signal]));
  }
  console.log = console.error;
  // The shared runtime's hints name the provider block and `tofu`, not `pulumi config`.
  setFrontEnd('terraform');
  try {
    const plugin = await servePlugin(providerService());
    process.stdout.write(`${plugin.handshake}\n`);
    await plugin.stopped;
    process.exit(0);
  } catch (err) {
    process.stderr.write(`terraform-provider-snapsync: ${(err as Error).message}\n`);
    process.exit(err instanceof PluginStartError ? 1 : 2);
  }
}
