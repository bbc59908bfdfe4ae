/**
 * Runs a Pulumi program under pulumi.runtime.setMocks and records every
 * resource it registers (type, name, inputs as the engine would receive them,
 * including the serialized dynamic provider).
 */
import * as pulumi from '@pulumi/pulumi';

export interface RegisteredResource {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
}

export async function runProgram(
  project: string,
  config: Record<string, string>,
  load: () => Promise<Record<string, unknown>>,
  outputsFor: (r: RegisteredResource) => Record<string, unknown> = () => ({}),
): Promise<{ resources: RegisteredResource[]; outputs: Record<string, unknown> }> {
  const resources: RegisteredResource[] = [];
  pulumi.runtime.setAllConfig(config);
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const registered = { type: args.type, name: args.name, inputs: args.inputs };
        resources.push(registered);
        return { id: `${args.name}-id`, state: { ...args.inputs, ...outputsFor(registered) } };
      },
      call: () => ({}),
    },
    project,
    'test',
    false,
  );
  const program = await load();
  const outputs: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(program)) {
    outputs[key] = pulumi.Output.isInstance(value)
      ? await new Promise((resolve) => (value as pulumi.Output<unknown>).apply(resolve))
      : value;
  }
  // Let every registration finish (the provider serializes asynchronously).
  await new Promise((resolve) => setTimeout(resolve, 50));
  return { resources, outputs };
}
