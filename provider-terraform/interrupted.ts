/**
 * What an apply interrupted by StopProvider or its timeout leaves in the
 * state, and how the user is told. The state recorded is what the agent
 * shows afterwards (read back within RECONCILE_MS, even after a stop), so
 * the next plan converges from the truth:
 *   - create: nothing answered → no object (null); a mutation answered → the
 *     object as it now is (Terraform keeps it tainted: the next apply
 *     replaces it, as after any failed create);
 *   - update, delete: the object as it now is (null when gone); when it
 *     cannot be read, the prior state stays.
 */
import { type Diagnostic, ERROR } from './diagnostics';
import { FINISH_GRACE_MS, type OperationInterrupted, runOperation } from './operations';
import type { BridgedResource, State } from './resources/bridge';
import type { Action } from './timeouts';

export const RECONCILE_MS = 10_000;

/** How the state was settled: told to the user in the diagnostic. */
export type Recorded = 'nothing' | 'as-now' | 'prior';

export async function afterInterruption(
  r: BridgedResource,
  action: Action,
  prior: State | null,
  planned: State | null,
  err: OperationInterrupted,
): Promise<{ state: State | null; recorded: Recorded }> {
  const readBack = (work: () => Promise<State | null>) =>
    runOperation(
      { ms: RECONCILE_MS, reason: 'reading back what the interrupted operation left' },
      work,
      true,
    );
  try {
    if (action === 'create') {
      if (err.answered.length === 0) return { state: null, recorded: 'nothing' };
      const now = await readBack(() => r.import(r.binding.importId(planned!)));
      return { state: { ...now, timeouts: planned!.timeouts ?? null }, recorded: 'as-now' };
    }
    const now = await readBack(() => r.read({ ...prior!, timeouts: (planned ?? prior)!.timeouts ?? null }));
    return { state: now, recorded: 'as-now' };
  } catch {
    return { state: prior, recorded: 'prior' };
  }
}

const joined = (methods: string[]) => [...new Set(methods)].join(', ');

export function interruptedDiagnostic(
  typeName: string,
  name: string,
  action: Action,
  err: OperationInterrupted,
  recorded: Recorded,
): Diagnostic {
  const { code, reason } = err.interruption;
  const what = code === 'STOPPED' ? `${action} stopped` : reason;
  const lines: string[] = [];
  if (err.answered.length === 0 && err.unanswered.length === 0) {
    lines.push('Nothing had been sent to the agent for it: nothing changed.');
  }
  if (err.answered.length > 0) {
    lines.push(
      `The agent had done ${joined(err.answered.map((m) => m.method))} (each whole); nothing after that was sent.`,
    );
  }
  if (err.unanswered.length > 0) {
    lines.push(
      `The agent had not answered ${joined(err.unanswered)} within ${FINISH_GRACE_MS / 1000} s: it runs an operation ` +
        'whole or not at all, possibly after this; the next plan (refresh) shows which' +
        (action === 'create' ? `, and if "${name}" appears on the agent, import it with id "${name}".` : '.'),
    );
  }
  if (recorded === 'as-now' && action === 'create') {
    lines.push('The state records the object as the agent now shows it; the next apply replaces it.');
  } else if (recorded === 'as-now') {
    lines.push('The state records what the agent now shows: the next plan converges from there.');
  } else if (recorded === 'prior') {
    lines.push('It could not be read back: the state keeps what it had; refresh before the next apply.');
  }
  return {
    severity: ERROR, // an interrupted apply is an error: Terraform keeps exactly the state returned
    summary: `${typeName} "${name}": ${what} [${code}]`,
    detail: lines.join(' '),
  };
}
