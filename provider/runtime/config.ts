/**
 * Provider configuration, read in `configure` from stack config (never
 * captured in the serialized provider):
 *   snapsync:url            agent URL (ws:// or wss://)
 *   snapsync:token          bearer token (set with --secret)
 *   snapsync:tlsFingerprint SHA-256 fingerprint of the agent's certificate (wss)
 *   snapsync:caFile         CA bundle to verify the agent's certificate (wss)
 *   snapsync:agents         JSON: { "<url>": { "token": "…", "tlsFingerprint": "…" } } for more hosts
 *                           (set with --secret; a resource's agentUrl must be the default or listed here)
 * SNAPSYNC_URL / SNAPSYNC_TOKEN in the environment are used when config is silent.
 */
import { wording } from './front-end';

export interface AgentSettings {
  url: string;
  token?: string;
  tlsFingerprint?: string;
  caFile?: string;
}

export interface ProviderSettings {
  default: AgentSettings | null;
  agents: Record<string, AgentSettings>;
}

export interface ConfigSource {
  get(key: string): string | undefined;
}

let settings: ProviderSettings = { default: null, agents: {} };

export function configure(config: ConfigSource): void {
  const read = (key: string) => {
    const value = config.get(`snapsync:${key}`);
    return value === undefined || value === '' ? undefined : value;
  };
  const url = read('url') ?? process.env.SNAPSYNC_URL;
  const agents: Record<string, AgentSettings> = {};
  const raw = read('agents');
  if (raw !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      throw new Error('snapsync:agents must be JSON: { "<url>": { "token": "…" } }');
    }
    for (const [agentUrl, value] of Object.entries(parsed as Record<string, Partial<AgentSettings>>)) {
      agents[agentUrl] = { ...value, url: agentUrl };
    }
  }
  settings = {
    default: url
      ? {
          url,
          token: read('token') ?? process.env.SNAPSYNC_TOKEN,
          tlsFingerprint: read('tlsFingerprint'),
          caFile: read('caFile'),
        }
      : null,
    agents,
  };
}

/** The settings in force (to tell whether a new configure changed them). */
export function currentSettings(): ProviderSettings {
  return settings;
}

/** Settings for a resource's agent: its own `agentUrl`, or the stack's default. */
export function agentSettings(agentUrl: string | undefined): AgentSettings {
  if (agentUrl) {
    const known = settings.agents[agentUrl];
    if (known) return known;
    if (settings.default?.url === agentUrl) return settings.default;
    // Never hand the default agent's token to a host nobody vouched for.
    throw new Error(`no credentials for agent ${agentUrl}: ${wording().addAgent(agentUrl)}`);
  }
  if (!settings.default) {
    throw new Error(`no snapsync agent configured: ${wording().configureAgent}`);
  }
  return settings.default;
}
