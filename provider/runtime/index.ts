/**
 * The provider runtime: the code the dynamic-provider plugin runs. The
 * serialized providers only hold small stubs that `require` this module
 * (built to provider/dist/runtime.js), so no configuration — and never the
 * agent token — is captured in Pulumi state.
 */
import { type ConfigSource, configure as configureSettings, currentSettings } from './config';
import { resetConnections } from './connections';

export { setConnector } from './connections';
export * as container from './container';
export * as snapshot from './snapshot';
export * as syncFromSnapshot from './sync-from-snapshot';

export async function configure(config: ConfigSource): Promise<void> {
  // Each resource type's provider configures once per plugin process, with the same stack config:
  // only a real change (another token or URL) drops the shared connections.
  const before = JSON.stringify(currentSettings());
  configureSettings(config);
  if (JSON.stringify(currentSettings()) !== before) resetConnections();
}
