/**
 * The `import` resource option for the dynamic resources: the engine's
 * import step cannot reach a dynamic provider (it reads with the id alone,
 * and the provider lives in the state it does not send), so the option's id
 * travels as the internal input `__import` instead, and the provider's create
 * adopts the existing object (provider/runtime/import.ts).
 */
import type * as pulumi from '@pulumi/pulumi';

export function importAsInput(
  opts: pulumi.CustomResourceOptions | undefined,
): [{ __import?: pulumi.Input<string> }, pulumi.CustomResourceOptions | undefined] {
  if (opts?.import === undefined) return [{}, opts];
  const { import: id, ...rest } = opts;
  return [{ __import: id }, rest];
}
