/**
 * The AgentApi over the agent's WebSocket protocol, through the agent client
 * (agent/client imports only schema/, so the provider stays free of the
 * engine). Every mutating call carries its idempotency key.
 */
import { AgentClient, AgentError } from '../../agent/client/client';
import type { AgentApi, AgentContainer, AgentSnapshot, AgentSyncResult } from './agent-api';
import type { AgentSettings } from './config';

const orNull = async <T>(call: Promise<T>): Promise<T | null> => {
  try {
    return await call;
  } catch (err) {
    if (err instanceof AgentError && err.code === 'NOT_FOUND') return null;
    throw err;
  }
};

export async function connect(settings: AgentSettings): Promise<AgentApi> {
  const fs = require('node:fs') as typeof import('node:fs');
  const client = await AgentClient.connect(settings.url, {
    token: settings.token,
    fingerprint: settings.tlsFingerprint,
    ca: settings.caFile ? fs.readFileSync(settings.caFile) : undefined,
    clientName: 'snapsync-pulumi/0.1',
  });
  const k = (idempotencyKey: string) => ({ idempotencyKey });
  const api: AgentApi = {
    describe: (name) => orNull(client.call('describe', { container: name }) as Promise<AgentContainer>),
    createContainer: (spec, key) =>
      client.call(
        'createContainer',
        {
          name: spec.name,
          type: spec.type,
          ...(spec.size !== undefined ? { size: spec.size } : {}),
          labels: spec.labels ?? {},
          ...(spec.members && Object.keys(spec.members).length > 0 ? { members: spec.members } : {}),
        },
        k(key),
      ),
    addMember: (vm, role, member, key) => client.call('addMember', { vm, role, member }, k(key)),
    removeMember: (vm, role, key) => client.call('removeMember', { vm, role }, k(key)),
    resize: (name, size, shrink, key, force) =>
      client.call('resize', { container: name, size, shrink, ...(force ? { force } : {}) }, k(key)),
    setLabels: (name, labels, key) => client.call('setLabels', { container: name, labels }, k(key)),
    deleteContainer: async (name, recursive, key, force, detach) => {
      await client.call(
        'deleteContainer',
        { container: name, recursive, ...(force ? { force } : {}), ...(detach ? { detach } : {}) },
        k(key),
      );
    },
    clone: (source, name, labels, key, options) =>
      client.call('clone', { source, name, labels, ...options }, k(key)),
    snapshot: (container, name, labels, key) =>
      client.call('snapshot', { container, name, labels }, k(key)) as Promise<AgentSnapshot>,
    describeSnapshot: (ref) =>
      orNull(client.call('describeSnapshot', { snapshot: ref }) as Promise<AgentSnapshot>),
    deleteSnapshot: async (ref, key) => {
      await client.call('deleteSnapshot', { snapshot: ref }, k(key));
    },
    sync: (target, source, options, key) =>
      client.call(
        'sync',
        {
          target,
          source,
          preserve: options.preserve,
          safetySnapshot: options.safetySnapshot,
          ...(options.members ? { members: options.members } : {}),
          ...(options.force ? { force: true } : {}),
          ...(options.referenceMap ? { referenceMap: options.referenceMap } : {}),
          ...(options.allowSourceReferences ? { allowSourceReferences: options.allowSourceReferences } : {}),
        },
        k(key),
      ) as Promise<AgentSyncResult>,
    revert: (container, snapshot, key, force) =>
      client.call('revert', { container, snapshot, ...(force ? { force } : {}) }, k(key)),
    lineage: (container) => client.call('lineage', { container }) as ReturnType<AgentApi['lineage']>,
    listContainers: () => client.call('listContainers', {}) as Promise<AgentContainer[]>,
    listSnapshots: (container) => client.call('listSnapshots', { container }) as Promise<AgentSnapshot[]>,
    close: () => client.close(),
  };
  return api;
}
