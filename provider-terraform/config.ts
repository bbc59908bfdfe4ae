/**
 * The provider block: url, token (sensitive), TLS pin or CA, and per-host
 * agents, handed to the runtime's configuration (provider/runtime/config.ts,
 * shared with the Pulumi provider; SNAPSYNC_URL/SNAPSYNC_TOKEN when unset).
 */
import { configure } from '../provider/runtime/config';
import type { BlockSpec } from './schema';
import { type CtyValue, isUnknown } from './wire/cty';

export const providerSchema: BlockSpec = {
  version: 0,
  description: 'snapsync agents: where they listen and how to authenticate.',
  attributes: {
    url: {
      type: 'string',
      optional: true,
      description: 'Agent URL, ws:// or wss:// (default SNAPSYNC_URL).',
    },
    token: {
      type: 'string',
      optional: true,
      sensitive: true,
      description: 'Bearer token (default SNAPSYNC_TOKEN).',
    },
    tls_fingerprint: {
      type: 'string',
      optional: true,
      description: "SHA-256 of the agent's certificate (wss).",
    },
    ca_file: { type: 'string', optional: true, description: "CA bundle for the agent's certificate (wss)." },
    agents: {
      type: 'string',
      optional: true,
      description: 'More agents, by URL (a resource names one with agent_url).',
      nestedMap: {
        token: { type: 'string', optional: true, sensitive: true, description: 'Bearer token.' },
        tls_fingerprint: {
          type: 'string',
          optional: true,
          description: "SHA-256 of the agent's certificate.",
        },
        ca_file: { type: 'string', optional: true, description: "CA bundle for the agent's certificate." },
      },
    },
  },
};

const text = (v: CtyValue | undefined) => (typeof v === 'string' && v !== '' ? v : undefined);

/** Applies a provider block (unknown values count as unset: the plan then fails where one is needed). */
export function configureFrom(config: { [attribute: string]: CtyValue } | null): void {
  const c = config ?? {};
  const agents: Record<string, { token?: string; tlsFingerprint?: string; caFile?: string }> = {};
  if (c.agents && !isUnknown(c.agents) && typeof c.agents === 'object') {
    for (const [url, raw] of Object.entries(c.agents as Record<string, { [k: string]: CtyValue }>)) {
      agents[url] = {
        token: text(raw?.token),
        tlsFingerprint: text(raw?.tls_fingerprint),
        caFile: text(raw?.ca_file),
      };
    }
  }
  const values: Record<string, string | undefined> = {
    'snapsync:url': text(c.url),
    'snapsync:token': text(c.token),
    'snapsync:tlsFingerprint': text(c.tls_fingerprint),
    'snapsync:caFile': text(c.ca_file),
    'snapsync:agents': Object.keys(agents).length > 0 ? JSON.stringify(agents) : undefined,
  };
  configure({ get: (key) => values[key] });
}
