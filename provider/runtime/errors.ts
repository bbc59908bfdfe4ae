/** Errors the provider shows a person: the operation, the container and the agent's code. */
import { inProviderTerms } from './agent-hints';
import { wording } from './front-end';

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

/** What to do about a code that is the configuration, not the resource, in the front end's words. */
function hint(code: string): string {
  const w = wording();
  switch (code) {
    case 'UNAUTHORIZED':
      return ` — the agent refused the token: ${w.setToken}`;
    case 'AUTH_BACKOFF':
      return ` — too many failed logins from here; check ${w.token} and retry in a minute`;
    case 'CONNECTION_FAILED':
      return ` — is the agent running, and is ${w.url} (or the ${w.agentUrl}) right?`;
    case 'CONNECTION_REFUSED':
      return ` — is ${w.url} (or the ${w.agentUrl}) the agent's WebSocket address?`;
    // The agent's message names the sessions; this says how the user proceeds.
    case 'IN_USE':
      return (
        `. To proceed: stop the VM (or detach the disk) and run \`${w.apply}\` again, or set ` +
        `${w.whenAttachedDisconnect} on this resource to have the agent drain and disconnect the attached clients first ` +
        '(their disks are then fenced: stop the VM, run `snapsync-agent unfence <vm or disk>`, then start it)'
      );
    default:
      return '';
  }
}

/** Runs an agent call, naming the operation and container in any error it throws. */
export async function step<T>(operation: string, container: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ProviderError) throw err;
    const e = err as { code?: string; message?: string };
    const code = e.code ?? 'AGENT_ERROR';
    throw new ProviderError(
      operation,
      container,
      code,
      `${inProviderTerms(e.message ?? String(err))}${hint(code)}`,
    );
  }
}

export const isNotFound = (err: unknown) => (err as { code?: string })?.code === 'NOT_FOUND';
