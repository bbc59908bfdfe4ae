/** Errors the provider shows a person: the operation, the container and the agent's code. */

export class ProviderError extends Error {
  constructor(
    readonly operation: string,
    readonly container: string,
    readonly code: string,
    detail: string,
  ) {
    super(`snapsync ${operation} of "${container}" failed: [${code}] ${detail}`);
    this.name = 'SnapsyncProviderError';
  }
}

/** Runs an agent call, naming the operation and container in any error it throws. */
export async function step<T>(operation: string, container: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ProviderError) throw err;
    const e = err as { code?: string; message?: string };
    const detail = e.message ?? String(err);
    throw new ProviderError(
      operation,
      container,
      e.code ?? 'AGENT_ERROR',
      e.code === 'IN_USE' ? `${detail}. ${IN_USE_HINT}` : detail,
    );
  }
}

/** How a Pulumi user proceeds past IN_USE (the agent's message names the sessions). */
const IN_USE_HINT =
  'To proceed: stop the VM (or detach the disk) and run `pulumi up` again, or set ' +
  "`whenAttached: 'disconnect'` on this resource to have the agent drain and disconnect the attached clients first";

export const isNotFound = (err: unknown) => (err as { code?: string })?.code === 'NOT_FOUND';
