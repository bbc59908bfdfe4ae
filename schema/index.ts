/**
 * The wire protocol's single source of truth, compiled once: JSON Schemas in
 * schema/protocol, TypeScript types generated from them (types.generated.ts,
 * checked for drift by a test). The agent validates every request with these;
 * the client validates every reply.
 */
import type { ErrorObject } from 'ajv';
import { validateDroppingUnknown } from './forward-compatible';
import opTable from './protocol/op-table.json';
import type { OpName } from './types.generated';
import { validator } from './validators';

export type * from './types.generated';

export const PROTOCOL_VERSION = 1;
export const OP_NAMES = Object.keys(opTable) as OpName[];

export interface SchemaProblem {
  /** JSON path of the offending value, e.g. `/params/size`. */
  path: string;
  message: string;
}

function problems(errors: ErrorObject[] | null | undefined, prefix: string): SchemaProblem[] {
  return (errors ?? []).map((e) => {
    const missing = (e.params as { missingProperty?: string }).missingProperty;
    const extra = (e.params as { additionalProperty?: string }).additionalProperty;
    const path =
      `${prefix}${e.instancePath}${missing ? `/${missing}` : ''}${extra ? `/${extra}` : ''}` || '/';
    const what = extra ? `unknown property "${extra}"` : (e.message ?? 'is invalid');
    return { path, message: what };
  });
}

function check(
  schema: 'messages' | 'ops',
  definition: string,
  value: unknown,
  prefix: string,
): SchemaProblem[] {
  const validate = validator(schema, definition);
  return validate(value) ? [] : problems(validate.errors, prefix);
}

/** As `check`, but what the schema does not know is dropped from `value` first (forward-compatible.ts). */
function accept(
  definition: string,
  schema: 'messages' | 'ops',
  value: unknown,
  prefix: string,
): SchemaProblem[] {
  const validate = validator(schema, definition);
  return validateDroppingUnknown(validate, value) ? [] : problems(validate.errors, prefix);
}

export const isOp = (op: string): op is OpName => Object.hasOwn(opTable, op);
export const isMutating = (op: OpName): boolean =>
  (opTable as Record<string, { mutating: boolean }>)[op]!.mutating;

export function checkRequest(message: unknown): SchemaProblem[] {
  return check('messages', 'Request', message, '');
}

export function checkHello(params: unknown): SchemaProblem[] {
  return check('messages', 'Hello', params, '/params');
}

export function checkParamsProblems(op: OpName, params: unknown): SchemaProblem[] {
  return check('ops', (opTable as Record<string, { params: string }>)[op]!.params, params, '/params');
}

/** Strict: what this agent sends must be exactly what the schema says (the agent's tests). */
export function checkResult(op: OpName, result: unknown): SchemaProblem[] {
  return check('ops', (opTable as Record<string, { result: string }>)[op]!.result, result, '/result');
}

/**
 * What a client accepts of an `op` result: properties a newer agent added are
 * dropped from `result` (in place), everything else is checked as strictly.
 */
export function acceptResult(op: OpName, result: unknown): SchemaProblem[] {
  return accept((opTable as Record<string, { result: string }>)[op]!.result, 'ops', result, '/result');
}

/** Strict check of a reply envelope (result not looked into: see checkResult). */
export function checkReply(message: unknown): SchemaProblem[] {
  return check('messages', 'Reply', message, '');
}

/**
 * What a client accepts of a reply envelope, unknown properties dropped (in
 * place). The kind of reply is told by its fields before validating, so only
 * one kind's schema ever drops anything.
 */
export function acceptReply(message: unknown): SchemaProblem[] {
  if (message === null || typeof message !== 'object') return checkReply(message);
  const fields = message as Record<string, unknown>;
  const kind =
    'event' in fields ? 'Progress' : fields.ok === true ? 'Ok' : fields.ok === false ? 'Failure' : null;
  return kind === null ? checkReply(message) : accept(kind, 'messages', message, '');
}

export function checkHelloResult(result: unknown): SchemaProblem[] {
  return check('messages', 'HelloResult', result, '/result');
}

/** What a client accepts of a hello result, unknown properties dropped (in place). */
export function acceptHelloResult(result: unknown): SchemaProblem[] {
  return accept('HelloResult', 'messages', result, '/result');
}
