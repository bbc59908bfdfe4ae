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

/** What to do about a code that is the stack's configuration, not the resource. */
const HINTS: Record<string, string> = {
  UNAUTHORIZED:
    ' — the agent refused the token: pulumi config set --secret snapsync:token <token> (for a host in snapsync:agents, its "token")',
  AUTH_BACKOFF: ' — too many failed logins from here; check snapsync:token and retry in a minute',
  CONNECTION_FAILED: ' — is the agent running, and is snapsync:url (or the agentUrl) right?',
  CONNECTION_REFUSED: " — is snapsync:url (or the agentUrl) the agent's WebSocket address?",
  // The agent's message names the sessions; this says how a Pulumi user proceeds.
  IN_USE:
    '. To proceed: stop the VM (or detach the disk) and run `pulumi up` again, or set ' +
    "`whenAttached: 'disconnect'` on this resource to have the agent drain and disconnect the attached clients first " +
    '(their disks are then fenced: stop the VM, run `snapsync-agent unfence <vm or disk>`, then start it)',
};

/** Runs an agent call, naming the operation and container in any error it throws. */
export async function step<T>(operation: string, container: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ProviderError) throw err;
    const e = err as { code?: string; message?: string };
    const code = e.code ?? 'AGENT_ERROR';
    throw new ProviderError(operation, container, code, `${e.message ?? String(err)}${HINTS[code] ?? ''}`);
  }
}

export const isNotFound = (err: unknown) => (err as { code?: string })?.code === 'NOT_FOUND';
