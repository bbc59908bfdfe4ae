/**
 * The AgentApi over the agent's WebSocket protocol (schema/). Until the agent
 * client lands (issue "The host agent"), connecting fails with a clear error;
 * tests of the resource logic inject a connector instead (setConnector).
 */
import type { AgentApi } from './agent-api';
import type { AgentSettings } from './config';

export async function connect(settings: AgentSettings): Promise<AgentApi> {
  throw Object.assign(new Error(`cannot reach ${settings.url}: this build has no agent client yet`), {
    code: 'AGENT_CLIENT_UNAVAILABLE',
  });
}
