/**
 * The usual setting of a gRPC test of the Terraform provider: a real agent
 * (prepared by `seed` through an admin client) and a plugin configured for
 * it, started before the describe block's tests and stopped after them.
 */
import type * as grpc from '@grpc/grpc-js';
import { AgentClient } from '../../agent/client/client';
import { type AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { cleanupTempDirs } from '../helpers/tmp';
import { call, configuredPlugin, type PluginProcess } from './plugin-process';

export interface PluginOnAgent<R> {
  readonly agent: AgentProcess;
  readonly plugin: PluginProcess;
  readonly client: grpc.Client;
  /** Calls a tfplugin6.Provider method. */
  rpc(method: string, request: object): Promise<R>;
}

/** Registers the before/after hooks; the returned object is filled in by `before`. */
export function pluginOnAgent<R>(seed?: (admin: AgentClient) => Promise<void>): PluginOnAgent<R> {
  const ctx = {
    rpc: (method: string, request: object) => call<R>(ctx.client, method, request),
  } as { -readonly [K in keyof PluginOnAgent<R>]: PluginOnAgent<R>[K] };
  before(async () => {
    ctx.agent = await startAgentProcess();
    if (seed) {
      const admin = await AgentClient.connect(ctx.agent.url, { token: ctx.agent.token });
      try {
        await seed(admin);
      } finally {
        await admin.close();
      }
    }
    Object.assign(ctx, await configuredPlugin(ctx.agent));
  });
  after(async () => {
    ctx.client?.close();
    ctx.plugin?.child.kill('SIGKILL');
    await ctx.agent?.stop();
    cleanupTempDirs();
  });
  return ctx;
}
