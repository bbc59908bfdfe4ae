/**
 * Finding an object the stack did not create (`Container.get`,
 * `Snapshot.get`): by name (`disk`, `vm@nightly`) or by uuid. Read-only.
 */
import type { AgentApi, AgentContainer, AgentSnapshot } from './agent-api';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function findContainer(agent: AgentApi, nameOrUuid: string): Promise<AgentContainer | null> {
  if (!UUID.test(nameOrUuid)) return agent.describe(nameOrUuid);
  return (await agent.listContainers()).find((c) => c.uuid === nameOrUuid) ?? null;
}

export async function findSnapshot(agent: AgentApi, refOrUuid: string): Promise<AgentSnapshot | null> {
  if (!UUID.test(refOrUuid)) return refOrUuid.includes('@') ? agent.describeSnapshot(refOrUuid) : null;
  for (const c of await agent.listContainers()) {
    const found = (await agent.listSnapshots(c.name)).find((s) => s.uuid === refOrUuid);
    if (found) return found;
  }
  return null;
}
