/**
 * Start-up of bin/terraform-provider-snapsync as tofu sees it: spawn → the
 * handshake line, and handshake → the first GetProviderSchema answered (the
 * host connects over mTLS and asks for the schema first). Median (min–max)
 * of N runs, for each Node given (the system's hands over to the project's
 * Node 24 through bin/launcher.js). Figures only: no assertion.
 *   npx tsx scripts/measure-terraform-plugin-startup.ts [runs] [node…]
 * SNAPSYNC_FROM_SOURCE=1 measures the TypeScript sources through tsx (the
 * launcher's fallback) instead of dist/terraform-provider/main.js.
 */
import * as path from 'node:path';
import { call, pluginClient, startPlugin } from '../test/terraform/plugin-process';

const runs = Number(process.argv[2] ?? 10);
const ROOT = path.resolve(__dirname, '..');
const nodes = process.argv.slice(3);
if (nodes.length === 0) nodes.push('/usr/bin/node', path.join(ROOT, 'node_modules/node/bin/node'));

const summary = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  return `${median.toFixed(0)} ms (${sorted[0]!.toFixed(0)}–${sorted.at(-1)!.toFixed(0)})`;
};

async function once(node: string): Promise<[number, number]> {
  const start = performance.now();
  const plugin = await startPlugin({}, node);
  const handshake = performance.now();
  const client = pluginClient(plugin, 'tfplugin6.Provider');
  await call(client, 'GetProviderSchema', {});
  const schema = performance.now();
  client.close();
  plugin.child.kill('SIGKILL');
  await plugin.exited;
  return [handshake - start, schema - handshake];
}

async function main(): Promise<void> {
  const from = process.env.SNAPSYNC_FROM_SOURCE ? 'sources (tsx)' : 'bundle';
  for (const node of nodes) {
    const toHandshake: number[] = [];
    const toSchema: number[] = [];
    await once(node); // warm the page cache
    for (let i = 0; i < runs; i++) {
      const [h, s] = await once(node);
      toHandshake.push(h);
      toSchema.push(s);
    }
    console.log(
      `${node} (${from}): spawn → handshake ${summary(toHandshake)}; handshake → GetProviderSchema ${summary(toSchema)}`,
    );
  }
}

void main();
