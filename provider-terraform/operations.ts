/**
 * Cancellation (StopProvider) and timeouts of the provider's calls. Each call
 * that may reach the agent runs as an operation (AsyncLocalStorage carries it
 * through the runtime's awaits), and every agent connection the runtime opens
 * is guarded, so that once the operation is interrupted:
 *   - no further agent call is sent (it fails at once, nothing sent);
 *   - a read or a connect in flight is abandoned (nothing changes by it);
 *   - a mutation in flight is waited for, up to FINISH_GRACE_MS: the agent
 *     runs an operation it has received whole or not at all, and its answer
 *     says which, so the provider can record what happened. Unanswered after
 *     the grace, the outcome is unknown and the diagnostic says so.
 * Then the operation fails with OperationInterrupted (code STOPPED or
 * TIMEOUT), which lists the mutations answered and unanswered. Cost: one
 * Proxy per connection, one closure per agent call.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { AgentApi } from '../provider/runtime/agent-api';
import { connect } from '../provider/runtime/agent-connection';
import type { AgentSettings } from '../provider/runtime/config';

export const FINISH_GRACE_MS = 10_000;

const MUTATIONS = new Set<keyof AgentApi>([
  'createContainer',
  'addMember',
  'removeMember',
  'resize',
  'setLabels',
  'deleteContainer',
  'clone',
  'snapshot',
  'deleteSnapshot',
  'sync',
  'revert',
]);

export interface Interruption {
  code: 'STOPPED' | 'TIMEOUT';
  /** Why, in the user's words: "tofu asked the provider to stop", "timed out after 5m (timeouts.create)". */
  reason: string;
}

export interface AgentCallRecord {
  method: string;
  /** Its answer (a mutation answered), absent while unanswered. */
  result?: unknown;
  /** The agent refused it (an error answer: nothing was done). */
  failed?: boolean;
}

class Operation {
  readonly controller = new AbortController();
  interruption: Interruption | null = null;
  /** Mutations sent, in order; `result` set when answered. */
  readonly mutations: AgentCallRecord[] = [];
  readonly inFlight = new Set<Promise<unknown>>();

  interrupt(why: Interruption): void {
    if (this.interruption) return;
    this.interruption = why;
    this.controller.abort();
  }
}

export class OperationInterrupted extends Error {
  override name = 'OperationInterrupted';
  readonly code: Interruption['code'];
  constructor(
    readonly interruption: Interruption,
    /** Mutations the agent answered during the operation (done, each whole). */
    readonly answered: AgentCallRecord[],
    /** Mutations sent but not answered within the grace: the agent may still apply them. */
    readonly unanswered: string[],
  ) {
    super(interruption.reason);
    this.code = interruption.code;
  }
}

const current = new AsyncLocalStorage<Operation>();
const running = new Set<Operation>();
let stopped: Interruption | null = null;

/** StopProvider: interrupts every operation running, and refuses the ones after it. */
export function stopAll(reason: string): void {
  stopped ??= { code: 'STOPPED', reason };
  for (const op of running) op.interrupt(stopped);
}

const whenAborted = (op: Operation) =>
  new Promise<void>((resolve) => {
    if (op.controller.signal.aborted) resolve();
    else op.controller.signal.addEventListener('abort', () => resolve(), { once: true });
  });
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/** What an interrupted operation reports: the mutations the agent answered, and those it has not. */
function interrupted(op: Operation): OperationInterrupted {
  return new OperationInterrupted(
    op.interruption!,
    op.mutations.filter((m) => 'result' in m),
    op.mutations.filter((m) => !('result' in m) && !m.failed).map((m) => m.method),
  );
}

/** The agent connection as operations see it (the runtime's connector, installed once by the provider). */
export async function guardedConnect(settings: AgentSettings): Promise<AgentApi> {
  const op = current.getStore();
  const connecting = connect(settings);
  if (!op) return guard(await connecting);
  // A connect is no change: abandoned at once (a connection that opens later is closed).
  let connected = false;
  const abandoned = whenAborted(op).then(() => {
    if (!connected) connecting.then((api) => api.close()).catch(() => {});
    throw interrupted(op);
  });
  abandoned.catch(() => {});
  const api = await Promise.race([connecting, abandoned]);
  connected = true;
  return guard(api);
}

function guard(api: AgentApi): AgentApi {
  return new Proxy(api, {
    get(target, name: keyof AgentApi) {
      const real = target[name];
      if (typeof real !== 'function' || name === 'close') return real;
      return (...args: unknown[]) => {
        const op = current.getStore();
        const call = () => (real as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        if (!op) return call();
        if (op.interruption) return Promise.reject(interrupted(op));
        if (!MUTATIONS.has(name)) {
          return Promise.race([call(), whenAborted(op).then(() => Promise.reject(interrupted(op)))]);
        }
        const record: AgentCallRecord = { method: String(name) };
        op.mutations.push(record);
        const sent = call().then(
          (result) => {
            record.result = result ?? null;
            return result;
          },
          (error: unknown) => {
            record.failed = true;
            throw error;
          },
        );
        op.inFlight.add(sent);
        sent.catch(() => {}).finally(() => op.inFlight.delete(sent));
        return sent;
      };
    },
  });
}

/**
 * Runs `work` as an operation, interrupted by StopProvider or when `limit` passes. A work that
 * finishes although interrupted (its last call was answered) returns normally: nothing is half done.
 */
export async function runOperation<T>(
  limit: { ms: number; reason: string } | null,
  work: () => Promise<T>,
  /** Runs even after StopProvider (reading back what an interrupted operation left): `limit` bounds it. */
  afterStop = false,
): Promise<T> {
  const op = new Operation();
  if (stopped && !afterStop) op.interrupt(stopped);
  if (!afterStop) running.add(op);
  const timer = limit
    ? setTimeout(() => op.interrupt({ code: 'TIMEOUT', reason: limit.reason }), limit.ms)
    : null;
  timer?.unref();
  try {
    const settled = current.run(op, work).then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    );
    const first = await Promise.race([settled, whenAborted(op).then(() => null)]);
    // Interrupted while waiting: let the work unwind (its next call fails at once) and a mutation in
    // flight be answered, within the grace.
    const outcome = first ?? (await Promise.race([settled, sleep(FINISH_GRACE_MS).then(() => null)]));
    if (outcome?.ok) return outcome.value;
    if (op.interruption) throw interrupted(op);
    throw outcome!.error;
  } finally {
    if (timer) clearTimeout(timer);
    running.delete(op);
  }
}
