/** One agent connection per URL, opened on first use inside the plugin process. */
import type { AgentApi } from './agent-api';
import { type AgentSettings, agentSettings } from './config';
import { step } from './errors';

export type Connector = (settings: AgentSettings) => Promise<AgentApi>;

let connector: Connector | null = null;
const CONFIG_REFUSED = new Set(['UNAUTHORIZED', 'TLS_PIN_MISMATCH']);
const open = new Map<string, Promise<AgentApi>>();

/** Replaces how connections are made (the default speaks the WebSocket protocol). */
export function setConnector(next: Connector | null): void {
  connector = next;
  open.clear();
}

/** The connection to a resource's agent; a failure names the container and the agent's code. */
export function agentFor(agentUrl: string | undefined, container: string): Promise<AgentApi> {
  return step('connect', container, () => connection(agentUrl));
}

/** New configuration (another token or URL): the next call connects afresh with it. */
export function resetConnections(): void {
  for (const connection of open.values()) connection.then((api) => api.close()).catch(() => {});
  open.clear();
}

function connection(agentUrl: string | undefined): Promise<AgentApi> {
  const settings = agentSettings(agentUrl);
  let connection = open.get(settings.url);
  if (!connection) {
    const connect: Connector = connector ?? require('./agent-connection').connect;
    connection = connect(settings);
    // A failed connect is not cached (the next call tries again), unless the configuration itself is
    // refused: every resource then reports the same error, and a wrong token is not retried
    // once per resource into the agent's login back-off.
    connection.catch((err: { code?: string }) => {
      if (!CONFIG_REFUSED.has(err?.code ?? '')) open.delete(settings.url);
    });
    open.set(settings.url, connection);
  }
  return connection;
}
